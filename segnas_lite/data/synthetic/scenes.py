"""``SyntheticScenes`` (4 classes): street-like scenes with sky, ground, people and objects, drawn
on the fly; ``write_scene_folder`` writes them to disk as a split folder (to try the folder commands).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from segnas_lite.data.synthetic.base import SyntheticDataset
from segnas_lite.data.synthetic.drawing import (any_colour, camera_effects, distractor_colour, ellipse, jitter,
                                                skin_colour, solid, texture)
from segnas_lite.data.transforms import CONTENT_STREAM, item_rng


class SyntheticScenes(SyntheticDataset):
    """Street-like scenes with four classes: 0 sky, 1 ground (grass, road, hills), 2 person,
    3 object (cars and boxes). Objects further away are smaller and drawn first, so nearer ones
    occlude them in the image and the mask alike."""

    num_classes = 4
    class_names = ("sky", "ground", "person", "object")

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = item_rng(self.seed, index, CONTENT_STREAM)
        size = self.image_size
        horizon = size * rng.uniform(0.3, 0.6)
        slope = rng.normal(0.0, 0.08) * size
        canvas = self._sky(rng, size, horizon)
        mask = Image.new("L", (size, size), 0)
        draw, label = ImageDraw.Draw(canvas), ImageDraw.Draw(mask)
        self._ground(rng, canvas, label, size, horizon, slope)
        if rng.random() < 0.7:
            self._road(rng, draw, label, size, horizon)
        # Things standing on the ground, far (small) to near (large).
        feet = np.sort(rng.uniform(horizon + 4, size * 1.15, int(rng.integers(1, 7))))
        for foot in feet:
            depth = (foot - horizon) / (size - horizon)  # 0 at horizon, 1 at the bottom edge
            x = rng.uniform(-0.1, 1.1) * size
            if rng.random() < 0.5:
                self._person(rng, draw, label, x, foot, size * (0.1 + 0.5 * depth))
            else:
                self._thing(rng, draw, label, x, foot, size * (0.08 + 0.4 * depth))
        return camera_effects(rng, canvas, size, blur_prob=0.3, noise_max=8), np.asarray(mask, np.uint8)

    @staticmethod
    def _sky(rng, size: int, horizon: float) -> Image.Image:
        """Vertical gradient between two colours, with a few clouds (still sky, class 0)."""
        top = jitter(rng, rng.choice([(70, 120, 200), (150, 170, 190), (230, 150, 90)]), 30)
        low = jitter(rng, (200, 215, 230), 30)
        rows = np.linspace(0, 255, size).astype(np.uint8)  # (S,) top -> bottom
        gradient = Image.fromarray(np.ascontiguousarray(np.broadcast_to(rows[:, None], (size, size))))
        canvas = solid(size, top)
        canvas.paste(low, mask=gradient)
        draw = ImageDraw.Draw(canvas)
        for _ in range(int(rng.integers(0, 4))):
            cx, cy = rng.uniform(0, size), rng.uniform(0, horizon)
            draw.polygon(ellipse(cx, cy, size * rng.uniform(0.05, 0.2), size * rng.uniform(0.02, 0.06),
                                  n=16).tolist(), fill=jitter(rng, (235, 235, 240), 15))
        return canvas

    @staticmethod
    def _ground(rng, canvas: Image.Image, label: ImageDraw.ImageDraw, size: int, horizon: float,
                slope: float) -> None:
        """A hills line across the horizon and a textured field below it (class 1)."""
        xs = np.linspace(-1, size + 1, 12)
        hills = horizon + slope * (xs / size - 0.5) - np.abs(rng.normal(0, 0.05, 12)) * size
        ground_poly = list(zip(xs.tolist(), hills.tolist())) + [(size + 1, size + 1), (-1, size + 1)]
        field = texture(rng, size, jitter(rng, rng.choice([(80, 130, 60), (150, 130, 90),
                                                            (110, 110, 100)]), 30), strength=0.25)
        ground = Image.new("L", (size, size), 0)
        ImageDraw.Draw(ground).polygon(ground_poly, fill=255)
        canvas.paste(field, mask=ground)
        label.polygon(ground_poly, fill=1)

    @staticmethod
    def _road(rng, draw: ImageDraw.ImageDraw, label: ImageDraw.ImageDraw, size: int,
              horizon: float) -> None:
        """A road trapezoid from a vanishing point on the horizon, with a dashed centre line (class 1)."""
        vx = size * rng.uniform(0.2, 0.8)
        road = [(vx - size * 0.01, horizon), (vx + size * 0.01, horizon),
                (size * rng.uniform(0.8, 1.5), size + 1), (size * rng.uniform(-0.5, 0.2), size + 1)]
        draw.polygon(road, fill=jitter(rng, (90, 90, 95), 20))
        label.polygon(road, fill=1)
        for t0 in np.arange(0.05, 1.0, 0.15):  # dashed centre line, perspective spacing
            t1 = t0 + 0.06
            y0, y1 = horizon + (size - horizon) * t0 ** 2, horizon + (size - horizon) * t1 ** 2
            mx = (road[2][0] + road[3][0]) / 2
            x0, x1 = vx + (mx - vx) * t0 ** 2, vx + (mx - vx) * t1 ** 2
            draw.line([(x0, y0), (x1, y1)], fill=(230, 230, 210), width=max(1, int(3 * t1 * size / 256)))

    @staticmethod
    def _person(rng, draw, label, x, foot, height):
        """A small standing figure (class 2): legs, shirt, arms and head, as fractions of ``height``."""
        skin, shirt, trousers = skin_colour(rng), any_colour(rng), any_colour(rng)
        r = height * 0.07
        w = max(1, int(height * 0.09))
        parts = [  # (kind, geometry, colour)
            ("line", [(x - r * 0.8, foot), (x - r * 0.5, foot - height * 0.47)], trousers),
            ("line", [(x + r * 0.8, foot), (x + r * 0.5, foot - height * 0.47)], trousers),
            ("poly", [(x - 1.5 * r, foot - height * 0.8), (x + 1.5 * r, foot - height * 0.8),
                      (x + 1.2 * r, foot - height * 0.45), (x - 1.2 * r, foot - height * 0.45)], shirt),
            ("line", [(x - 1.6 * r, foot - height * 0.78), (x - 2.2 * r, foot - height * 0.5)], shirt),
            ("line", [(x + 1.6 * r, foot - height * 0.78), (x + 2.0 * r, foot - height * 0.5)], shirt),
            ("poly", ellipse(x, foot - height * 0.88, r * 0.9, r * 1.15, n=16).tolist(), skin),
        ]
        for kind, geometry, colour in parts:
            if kind == "line":
                draw.line(geometry, fill=colour, width=w)
                label.line(geometry, fill=2, width=w)
            else:
                draw.polygon([tuple(p) for p in geometry], fill=colour)
                label.polygon([tuple(p) for p in geometry], fill=2)

    @staticmethod
    def _thing(rng, draw, label, x, foot, height):
        """A car (body, cabin, window, wheels) or a box with a lighter top face (class 3)."""
        colour = distractor_colour(rng)
        if rng.random() < 0.6:  # car: body, cabin, wheels, windows
            length = height * rng.uniform(2.0, 2.8)
            body = [(x, foot - height * 0.2), (x + length, foot - height * 0.2),
                    (x + length, foot - height * 0.6), (x, foot - height * 0.6)]
            cabin = [(x + length * 0.2, foot - height * 0.6), (x + length * 0.8, foot - height * 0.6),
                     (x + length * 0.65, foot - height), (x + length * 0.3, foot - height)]
            for polygon in (body, cabin):
                draw.polygon(polygon, fill=colour)
                label.polygon(polygon, fill=3)
            draw.polygon([(x + length * 0.3, foot - height * 0.65), (x + length * 0.7, foot - height * 0.65),
                          (x + length * 0.62, foot - height * 0.93), (x + length * 0.33, foot - height * 0.93)],
                         fill=jitter(rng, (60, 80, 100), 20))
            for wx in (x + length * 0.2, x + length * 0.8):
                wheel = ellipse(wx, foot - height * 0.2, height * 0.2, height * 0.2, n=14).tolist()
                draw.polygon([tuple(p) for p in wheel], fill=(25, 25, 25))
                label.polygon([tuple(p) for p in wheel], fill=3)
        else:  # box with a lighter top face
            w = height * rng.uniform(0.6, 1.4)
            front = [(x, foot), (x + w, foot), (x + w, foot - height), (x, foot - height)]
            top = [(x, foot - height), (x + w, foot - height), (x + w * 1.2, foot - height * 1.2),
                   (x + w * 0.2, foot - height * 1.2)]
            draw.polygon(front, fill=colour)
            draw.polygon(top, fill=jitter(rng, colour, 30))
            label.polygon(front, fill=3)
            label.polygon(top, fill=3)



def write_scene_folder(root, *, counts: dict[str, int], image_size: int = 64, seed: int = 0,
                       void: int | None = None, overwrite: bool = False) -> Path:
    """Write ``SyntheticScenes`` to disk in the split-folder layout of SegNet's CamVid release
    (``train/ + trainannot/``, ``val/ + valannot/``, ...): a folder to try ``segnas data check`` and
    ``segnas train --data`` on without a download. ``counts``: images per split (each split uses its
    own seed). With ``void`` the mask's top-left 4x4 corner holds that raw value ("no label"), as
    CamVid's 11. Refuses a ``root`` that already holds files unless ``overwrite``."""
    from segnas_lite.runio import atomic_open
    root = Path(root)
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise FileExistsError(f"{root} is not empty; choose another folder or pass overwrite=True")
    for offset, (split, n) in enumerate(counts.items()):
        scenes = SyntheticScenes(length=n, image_size=image_size, seed=seed + 7919 * offset)
        images, masks = root / split, root / f"{split}annot"
        images.mkdir(parents=True, exist_ok=True)
        masks.mkdir(parents=True, exist_ok=True)
        for index in range(n):
            picture, labels = scenes.render(index)  # (S, S, 3) uint8, (S, S) class indices
            labels = labels.astype(np.uint8)
            if void is not None:
                labels[:4, :4] = void
            for array, path in ((picture, images / f"{split}_{index:04d}.png"),
                                (labels, masks / f"{split}_{index:04d}.png")):
                with atomic_open(path, "wb") as handle:
                    Image.fromarray(array).save(handle, format="PNG")
    return root
