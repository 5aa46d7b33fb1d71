"""Files and seeds of a run: atomic writes, safe checkpoint loading, RNG state, the run-folder guard.

Everything that writes results goes through here, so that three promises hold everywhere:

* a reader never sees a half-written file (``atomic_open``: temp file, fsync, one rename);
* a checkpoint never runs code from a file (``load_checkpoint`` uses ``weights_only=True``);
* a finished run is never replaced unless the user asked for it (``guard_run_dir``).
"""
from __future__ import annotations

import contextlib
import os
import random
import re
import tempfile
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch

from segnas_lite.errors import SegnasError


class RunDirectoryError(SegnasError, FileExistsError):
    """The output folder already holds a run and neither resume nor overwrite was asked for."""


class CheckpointError(SegnasError, RuntimeError):
    """A checkpoint that cannot be used (missing, corrupt, or from a different model)."""


# --------------------------------------------------------------------------- atomic files
class MissingDependencyError(SegnasError, ImportError):
    """An optional package (NNCF, OpenCV, ...) is needed and not installed; the message says how
    to install it."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename.

    A crash (or Ctrl-C) inside the ``with`` block leaves the old file whole and removes the
    temporary one, so a reader never sees a half-written checkpoint or JSON file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` that leaves either the old file or the new one, whole."""
    with atomic_open(path, "wb") as fh:
        torch.save(obj, fh)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write a text file (UTF-8) atomically."""
    with atomic_open(path, "w") as fh:
        fh.write(text)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint safely (``weights_only=True``: tensors and plain containers, no code)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}; train first (segnas train ... --out DIR)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt file or one holding pickled code
        raise CheckpointError(_unreadable_checkpoint(path, exc)) from exc


def _unreadable_checkpoint(path: Path, exc: Exception) -> str:
    """What to say when ``torch.load(weights_only=True)`` refuses a file. PyTorch's own message
    suggests ``weights_only=False``, which would run the file's code: never passed on."""
    found = re.search(r"GLOBAL ([\w.]+)", str(exc))
    if found:
        return (f"cannot read checkpoint {path}: it holds a Python object ({found.group(1)}), and "
                "segnas_lite loads only tensors and plain containers, never a file's code. If "
                "you wrote it, save the model's state_dict instead; if not, do not trust it")
    return (f"cannot read checkpoint {path}: it is not a PyTorch checkpoint, or it is truncated "
            f"({type(exc).__name__}). Copy it again, or retrain")


# --------------------------------------------------------------------------- the run folder
def guard_run_dir(out: str | os.PathLike, names: Sequence[str], *, resume: bool, overwrite: bool,
                  what: str = "run") -> list[Path]:
    """Refuse to replace a finished run: the files of ``names`` that already exist in ``out``.

    Raises ``RunDirectoryError`` when some exist and neither ``resume`` nor ``overwrite`` is set,
    or when ``out`` cannot be a folder because it, or a folder above it, is a file.
    Returns the existing paths (the caller deletes them when overwriting, or resumes from them).
    """
    out = Path(out)
    blocking = next((path for path in (out, *out.parents) if path.exists() and not path.is_dir()),
                    None)
    if blocking is not None:
        raise RunDirectoryError(f"{out} cannot be a {what} folder: {blocking} is a file; choose "
                                "another folder")
    existing = [out / name for name in names if (out / name).exists()]
    if existing and not resume and not overwrite:
        listed = ", ".join(path.name for path in existing)
        raise RunDirectoryError(f"{out} already holds a {what} ({listed}); pass resume=True "
                                "(--resume) to continue it, overwrite=True (--overwrite) to "
                                "replace it, or choose another folder")
    return existing


# --------------------------------------------------------------------------- seeds and RNG state
def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def stream_seed(seed: int, epoch: int, stream: int = 0) -> int:
    """An independent 63-bit seed for each (run seed, epoch, stream).

    A stream is one consumer of randomness (0: the batch order of training, 1: the held-out split of
    a search, ...). Mixing with NumPy's ``SeedSequence`` keeps the streams uncorrelated, unlike
    ``seed * constant + epoch`` where two runs can share a seed.
    """
    words = np.random.SeedSequence([int(seed), int(epoch), int(stream)]).generate_state(2, np.uint32)
    return (int(words[0]) << 31) ^ int(words[1])


def torch_generator(seed: int, epoch: int, stream: int = 0) -> torch.Generator:
    """A ``torch.Generator`` seeded with ``stream_seed(seed, epoch, stream)``."""
    return torch.Generator().manual_seed(stream_seed(seed, epoch, stream))


def rng_state() -> dict:
    """Global RNG states as tensors and plain values (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {"key": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "cached": float(np_state[4])},
        "python": random.getstate(),
    }


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


# --------------------------------------------------------------------------- progress bars
def progress(iterable: Iterable, *, quiet: bool = False, **kwargs: Any):
    """A tqdm progress bar, or the bare iterable when ``quiet`` or ``SEGNAS_QUIET=1``."""
    from segnas_lite.flags import quiet as quiet_env
    if quiet or quiet_env():
        return iterable
    from tqdm.auto import tqdm
    return tqdm(iterable, **kwargs)
