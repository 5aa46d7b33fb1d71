"""Video files in and out: ``read_video`` (OpenCV) and ``VideoWriter`` / ``write_video`` (.mp4 and
.avi through OpenCV, .gif through Pillow).

Frames are (H, W, 3) uint8 RGB arrays.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from segnas_lite.errors import SegnasError


class VideoError(SegnasError, RuntimeError):
    """A video that cannot be read or written."""


# --------------------------------------------------------------------------- frames in
def read_video(path: str | os.PathLike, *, max_frames: int | None = None) -> tuple[Iterator[np.ndarray], float, int]:
    """Open a video file -> (frames, fps, frame count); frames yields (H, W, 3) uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise VideoError(f"no video file at {path}")
    capture = cv2.VideoCapture(str(path))
    if not capture.isOpened():
        raise VideoError(f"OpenCV cannot open {path} (an unsupported codec or not a video)")
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if max_frames is not None:
        count = min(count, max_frames) if count else max_frames

    def frames() -> Iterator[np.ndarray]:
        done = 0
        try:
            while max_frames is None or done < max_frames:
                ok, bgr = capture.read()
                if not ok:
                    break
                done += 1
                yield cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        finally:
            capture.release()
    return frames(), float(fps), count


# --------------------------------------------------------------------------- frames out
class VideoWriter:
    """Write (H, W, 3) uint8 RGB frames to ``.mp4``/``.avi`` (OpenCV) or ``.gif`` (Pillow).

    The file appears only when ``close()`` succeeds (written under a temporary name, then renamed),
    so an interrupted run never leaves a half-written video under the final name."""

    def __init__(self, path: str | os.PathLike, *, fps: float) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in (".mp4", ".avi", ".gif"):
            raise VideoError(f"{self.path}: the output must end in .mp4, .avi or .gif")
        self.partial = self.path.with_name(f".{self.path.stem}.partial{suffix}")
        self.fps, self.suffix = fps, suffix
        self._writer = None
        self._gif: list = []

    def write(self, frame: np.ndarray) -> None:
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise VideoError(f"frames must be (H, W, 3) uint8, got {frame.dtype} {frame.shape}")
        if self.suffix == ".gif":
            from PIL import Image
            self._gif.append(Image.fromarray(frame))
            return
        if self._writer is None:
            code = "mp4v" if self.suffix == ".mp4" else "MJPG"
            height, width = frame.shape[:2]
            self._writer = cv2.VideoWriter(str(self.partial), cv2.VideoWriter_fourcc(*code),
                                           self.fps, (width, height))
            if not self._writer.isOpened():
                raise VideoError(f"OpenCV cannot write {self.suffix} files here ({code} codec)")
        self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self) -> Path:
        if self.suffix == ".gif":
            if not self._gif:
                raise VideoError("no frames were written")
            self._gif[0].save(self.partial, format="GIF", save_all=True, append_images=self._gif[1:],
                              duration=max(1, round(1000 / self.fps)), loop=0)
        else:
            if self._writer is None:
                raise VideoError("no frames were written")
            self._writer.release()
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        """Drop a failed run's partial file."""
        if self._writer is not None:
            self._writer.release()
        self.partial.unlink(missing_ok=True)


def write_video(frames: Iterable[np.ndarray], path: str | os.PathLike, *, fps: float) -> Path:
    """Write every (H, W, 3) uint8 frame to ``path`` (``VideoWriter``); on any failure, the
    partial file is dropped and the error raised again. Returns the path written."""
    writer = VideoWriter(path, fps=fps)
    try:
        for frame in frames:
            writer.write(frame)
        return writer.close()
    except BaseException:
        writer.discard()
        raise
