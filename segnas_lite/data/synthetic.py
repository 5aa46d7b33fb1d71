"""Synthetic data drawn on the fly: no download, deterministic per ``(seed, index)``.

* ``SyntheticPortraits`` (2 classes): a person on a cluttered background, proportions in ``PORTRAIT``.
* ``SyntheticScenes`` (4 classes): street-like scenes with sky, ground, people and objects.
* ``synthetic_video``: a short clip of a silhouette walking across the frame (the OpenVINO FPS demo).
* ``write_scene_folder``: scenes written to disk as a split folder (to try the folder commands).

Every random choice comes from one ``numpy.random.Generator`` per sample (``item_rng``), so the same
(seed, index) always gives the same picture. The PIL drawing helpers are in ``drawing.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from segnas_lite.data.drawing import (any_colour, camera_effects, distractor_colour, draw_clutter, ellipse,
                      hair_colour, jitter, ramp, rotate_move, skin_colour, smooth_noise, solid, texture)
from segnas_lite.data.transforms import AUGMENT_STREAM, CONTENT_STREAM, PairedAugment, item_rng, normalize
from segnas_lite.data.palette import palette


class _SyntheticBase(Dataset):
    """Shared plumbing: length, seed, augmentation and the (seed, index) -> generator rule."""

    num_classes = 2
    class_names: tuple[str, ...] = ()

    def __init__(self, *, length: int = 1000, image_size: int = 256, seed: int = 0,
                 augment: PairedAugment | None = None):
        if length < 0 or image_size < 16:
            raise ValueError(f"need length >= 0 and image_size >= 16, got {length}, {image_size}")
        self.length, self.image_size, self.seed, self.augment = length, image_size, seed, augment
        self.palette = palette(self.num_classes)
        self.epoch = 0

    def __len__(self) -> int:
        return self.length

    def set_epoch(self, epoch: int) -> None:
        """New augmentation draws each epoch (the engine calls this); the pictures stay the same."""
        self.epoch = epoch

    def __getitem__(self, index: int):
        """Any index >= 0 is valid (the dataset is infinite; ``length`` is what ``len`` reports)."""
        if index < 0:
            raise IndexError(f"index must be >= 0, got {index}")
        image, mask = self.render(index)  # (S, S, 3) uint8, (S, S) uint8
        mask = mask.astype(np.int64)
        if self.augment is not None:
            image, mask = self.augment(image, mask, item_rng(self.seed, index, AUGMENT_STREAM, self.epoch))
        return normalize(image), torch.from_numpy(mask)

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Draw sample ``index`` -> (image (S, S, 3) uint8, mask (S, S) uint8 class indices)."""
        raise NotImplementedError


@dataclass(frozen=True)
class BodyProportions:
    """The figure of ``SyntheticPortraits``, in units of the head half-height ``r`` (fields marked
    "x rx" are in units of the head half-width). Body coordinates: origin at the middle of the
    shoulder line, y down, so negative y is above the shoulders. A (low, high) pair is the range of
    a uniform draw."""

    head: float = 0.12  # r as a fraction of the image side ...
    head_scale: tuple[float, float] = (0.55, 1.4)  # ... times a random factor (near or far)
    head_aspect: tuple[float, float] = (0.7, 0.85)  # rx / r
    head_centre: float = -1.35  # y of the centre of the head
    head_pivot: float = -0.45  # y of the top of the neck: the head tilts about this point
    neck_half_width: tuple[float, float] = (0.45, 0.65)  # x rx
    neck_top: float = -0.6
    neck_bottom: float = 0.15
    shoulder_half_width: tuple[float, float] = (1.9, 2.7)  # x rx
    shoulder_inset: float = 0.45  # the torso's top corners are cut: this far in ...
    shoulder_drop: float = 0.5  # ... and this far down, a sloping shoulder
    torso_length: tuple[float, float] = (3.0, 9.0)  # shoulder line to hips
    hip_ratio: tuple[float, float] = (0.75, 1.1)  # hip half-width / shoulder half-width
    arm_joint: tuple[float, float] = (0.25, 0.35)  # in from the shoulder edge, down from the line
    arm_width: tuple[float, float] = (0.55, 0.8)
    upper_arm: float = 2.6
    forearm: float = 2.4
    hand_radii: tuple[float, float] = (0.4, 0.45)
    leg_length: float = 4.5
    leg_overlap: float = 0.2  # legs start this far above the end of the torso
    leg_spread: tuple[float, float] = (0.5, 0.6)  # x of a leg at the hip and at the foot, x hip
    leg_width: float = 0.8  # x hip half-width
    hair_raise: float = 0.12  # the hair ellipse sits this far above the head centre ...
    hair_radii: tuple[float, float] = (1.1, 1.05)  # ... with these radii (x rx, x r)
    long_hair_top: float = -1.4
    long_hair_bottom: float = 0.3  # long hair falls behind the neck to below the shoulder line
    long_hair_half_width: tuple[float, float] = (1.1, 1.25)  # x rx, at the top and the bottom
    fringe: tuple[float, float] = (0.3, 0.6)  # the fringe ends this far above the head centre
    eye_x: float = 0.38  # x rx, either side of the face's centre line
    eye_y: float = -0.05  # from the head centre
    eye_radii: tuple[float, float] = (0.14, 0.08)  # (x rx, x r)
    mouth_y: float = 0.5  # from the head centre
    mouth_radii: tuple[float, float] = (0.3, 0.07)  # (x rx, x r)


PORTRAIT = BodyProportions()


@dataclass
class _Figure:
    """One person being drawn: where it stands and leans, its head size, and the two pens (colours
    on the picture, class 1 on the mask). Points are given in body coordinates, in pixels."""

    canvas: Image.Image
    draw: ImageDraw.ImageDraw  # on the picture
    label: ImageDraw.ImageDraw  # on the mask
    pivot: tuple[float, float]  # middle of the shoulder line, image pixels
    lean: float  # body lean, radians
    tilt: float  # head tilt, radians (includes the lean)
    r: float  # head half-height, the unit of PORTRAIT
    rx: float  # head half-width

    def body(self, points) -> list[tuple[float, float]]:
        return rotate_move(points, self.pivot, self.lean)

    def head(self, points) -> list[tuple[float, float]]:
        """Head parts rotate by ``tilt`` about the top of the neck."""
        neck_top = self.body([(0, PORTRAIT.head_pivot * self.r)])[0]
        points = points.tolist() if isinstance(points, np.ndarray) else points
        return rotate_move([(x, y - PORTRAIT.head_pivot * self.r) for x, y in points], neck_top, self.tilt)

    def fill(self, polygon, colour) -> None:
        self.draw.polygon(polygon, fill=colour)
        self.label.polygon(polygon, fill=1)


class SyntheticPortraits(_SyntheticBase):
    """Person silhouettes (head, hair, neck, shoulders and torso, optional arms and a face) on
    cluttered backgrounds. Two classes: 0 background, 1 person.

    Background clutter is often painted in skin, hair or clothing colours, clothes can have any
    colour and texture, and lighting, blur and noise vary, so per-pixel colour cannot solve the task:
    a model must use shape and context.
    """

    num_classes = 2
    class_names = ("background", "person")

    def render(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rng = item_rng(self.seed, index, CONTENT_STREAM)
        size = self.image_size
        canvas = self._background(rng, size)
        mask = Image.new("L", (size, size), 0)
        self._person(rng, canvas, mask, size)
        if rng.random() < 0.15:  # foreground occluder (plant, table edge): hides part of the person
            occluder = Image.new("L", (size, size), 0)
            draw_clutter(rng, occluder, size, 1, fill=255)
            canvas.paste(distractor_colour(rng), mask=occluder)
            mask.paste(0, mask=occluder)
        return camera_effects(rng, canvas, size), np.asarray(mask, dtype=np.uint8)

    @staticmethod
    def _background(rng, size: int) -> Image.Image:
        c0, c1 = any_colour(rng), distractor_colour(rng)
        canvas = solid(size, c0)
        canvas.paste(c1, mask=ramp(rng, size))  # linear gradient from c0 to c1
        kind = rng.random()
        if kind < 0.4:  # blotchy texture (foliage, walls)
            blotches = smooth_noise(rng, size, int(rng.integers(6, 40)), mode="RGB")
            canvas = Image.blend(canvas, blotches, rng.uniform(0.1, 0.45))
        elif kind < 0.55:  # stripes / tiles
            canvas = Image.blend(canvas, texture(rng, size, c0), 0.4)
        draw_clutter(rng, canvas, size, int(rng.integers(0, 9)))
        return canvas

    @staticmethod
    def _person(rng, canvas: Image.Image, mask: Image.Image, size: int) -> None:
        """Draw one person into ``canvas`` (colours) and ``mask`` (value 1): clothed body and limbs
        first, then the hands, neck and head on top."""
        r = size * PORTRAIT.head * rng.uniform(*PORTRAIT.head_scale)
        rx = r * rng.uniform(*PORTRAIT.head_aspect)
        pivot = (size * rng.uniform(0.2, 0.8), size * rng.uniform(0.35, 0.75))
        if rng.random() < 0.2:  # sometimes the frame cuts the person at the side
            pivot = (size * rng.choice([rng.uniform(-0.05, 0.15), rng.uniform(0.85, 1.05)]), pivot[1])
        lean = rng.normal(0.0, 0.08)
        tilt = lean + rng.normal(0.0, 0.12)
        figure = _Figure(canvas, ImageDraw.Draw(canvas), ImageDraw.Draw(mask), pivot, lean, tilt, r, rx)
        skin, hair, cloth = skin_colour(rng), hair_colour(rng), any_colour(rng)
        hands = _draw_clothed_body(rng, figure, size, skin, cloth)
        for hx, hy in hands:
            hand = ellipse(0, 0, PORTRAIT.hand_radii[0] * r, PORTRAIT.hand_radii[1] * r, n=12)
            figure.fill([(hx + x, hy + y) for x, y in hand.tolist()], skin)
        _draw_head(rng, figure, skin, hair)


def _draw_clothed_body(rng, figure: _Figure, size: int, skin, cloth) -> list[tuple[float, float]]:
    """Torso, maybe arms and legs. Clothing goes through a stencil so that one texture covers the
    torso and sleeves. Returns the hand positions (image pixels) for the caller to draw on top."""
    P, r = PORTRAIT, figure.r
    half_w = figure.rx * rng.uniform(*P.shoulder_half_width)
    length = r * rng.uniform(*P.torso_length)
    hip = half_w * rng.uniform(*P.hip_ratio)
    torso = figure.body([(-half_w, P.shoulder_drop * r), (-half_w + P.shoulder_inset * r, 0.0),
                         (half_w - P.shoulder_inset * r, 0.0), (half_w, P.shoulder_drop * r),
                         (hip, length), (-hip, length)])
    clothes = Image.new("L", (size, size), 0)
    stencil = ImageDraw.Draw(clothes)
    stencil.polygon(torso, fill=255)
    figure.label.polygon(torso, fill=1)
    hands = _draw_arms(rng, figure, stencil, half_w, skin) if rng.random() < 0.6 else []
    if length < size and rng.random() < 0.7:  # legs only when the torso ends inside the frame
        width = max(2, int(hip * P.leg_width))
        for side in (-1, 1):
            leg = figure.body([(side * hip * P.leg_spread[0], length - P.leg_overlap * r),
                               (side * hip * P.leg_spread[1], length + P.leg_length * r)])
            figure.draw.line(leg, fill=any_colour(rng), width=width)
            figure.label.line(leg, fill=1, width=width)
    figure.canvas.paste(texture(rng, size, cloth), mask=clothes)
    return hands


def _draw_arms(rng, figure: _Figure, stencil: ImageDraw.ImageDraw, half_w: float,
               skin) -> list[tuple[float, float]]:
    """Two arms, shoulder -> elbow -> hand, as thick lines; sleeves go into the clothing stencil,
    bare forearms are painted in skin. Returns the two hand positions."""
    P, r = PORTRAIT, figure.r
    width = max(2, int(r * rng.uniform(*P.arm_width)))
    short_sleeves = rng.random() < 0.3
    hands = []
    for side in (-1, 1):
        shoulder = (side * (half_w - P.arm_joint[0] * r), P.arm_joint[1] * r)
        # Upper arm angle from straight down: mostly hanging, sometimes raised.
        up = side * rng.uniform(0.05, 0.6) if rng.random() < 0.85 else side * rng.uniform(1.5, 2.6)
        elbow = (shoulder[0] + P.upper_arm * r * math.sin(up), shoulder[1] + P.upper_arm * r * math.cos(up))
        bend = up - side * rng.uniform(0.0, 1.6)  # the elbow bends the forearm inwards
        hand = (elbow[0] + P.forearm * r * math.sin(bend), elbow[1] + P.forearm * r * math.cos(bend))
        arm = figure.body([shoulder, elbow, hand])
        if short_sleeves:  # sleeve stops at the elbow; the forearm is skin
            stencil.line(arm[:2], fill=255, width=width, joint="curve")
            figure.draw.line(arm[1:], fill=skin, width=width, joint="curve")
        else:
            stencil.line(arm, fill=255, width=width, joint="curve")
        figure.label.line(arm, fill=1, width=width, joint="curve")
        hands.append(arm[2])
    return hands


def _draw_head(rng, figure: _Figure, skin, hair) -> None:
    """Neck, hair behind the head, head, fringe on top, and often a face."""
    P, r, rx = PORTRAIT, figure.r, figure.rx
    neck_w = rx * rng.uniform(*P.neck_half_width)
    figure.fill(figure.body([(-neck_w, P.neck_top * r), (neck_w, P.neck_top * r),
                             (neck_w, P.neck_bottom * r), (-neck_w, P.neck_bottom * r)]),
                jitter(rng, skin, 8))
    centre = (0.0, P.head_centre * r)
    hair_rx, hair_ry = rx * P.hair_radii[0], r * P.hair_radii[1]
    bald = rng.random() < 0.1
    if not bald:
        if rng.random() < 0.35:  # long hair falling behind the neck to the shoulders
            top, bottom = rx * P.long_hair_half_width[0], rx * P.long_hair_half_width[1]
            figure.fill(figure.head([(-top, P.long_hair_top * r), (top, P.long_hair_top * r),
                                     (bottom, P.long_hair_bottom * r),
                                     (-bottom, P.long_hair_bottom * r)]), hair)
        figure.fill(figure.head(ellipse(centre[0], centre[1] - P.hair_raise * r, hair_rx, hair_ry)), hair)
    figure.fill(figure.head(ellipse(*centre, rx, r)), skin)
    if not bald:  # fringe: the top of the hair ellipse, cut by a line across the forehead
        cap = ellipse(centre[0], centre[1] - P.hair_raise * r, hair_rx, hair_ry, n=32)
        line = centre[1] - r * rng.uniform(*P.fringe)
        cap = cap[cap[:, 1] < line]
        if len(cap) >= 3:
            figure.fill(figure.head(cap), hair)
    if rng.random() < 0.7:  # eyes and mouth: dark spots inside the person
        dark = jitter(rng, (40, 30, 30), 20)
        eye_rx, eye_ry = P.eye_radii[0] * rx, P.eye_radii[1] * r
        for side in (-1, 1):
            eye = ellipse(side * P.eye_x * rx, centre[1] + P.eye_y * r, eye_rx, eye_ry, n=8)
            figure.draw.polygon(figure.head(eye), fill=dark)
        mouth = ellipse(0, centre[1] + P.mouth_y * r, P.mouth_radii[0] * rx, P.mouth_radii[1] * r, n=8)
        figure.draw.polygon(figure.head(mouth), fill=jitter(rng, (150, 60, 60), 30))


class SyntheticScenes(_SyntheticBase):
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


# --------------------------------------------------------------------------------------------------
# A synthetic video (the OpenVINO FPS demo)
# --------------------------------------------------------------------------------------------------
def synthetic_video(
    num_frames: int, *, image_size: tuple[int, int] = (256, 256), seed: int = 0
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """A short clip of a person silhouette (head + shoulders) walking left to right.

    Returns ``num_frames`` pairs ``(image, mask)``: image (3, H, W) float ImageNet-normalised,
    mask (H, W) int64 with 1 = person, 0 = background. The background is a seeded colour gradient
    with mild noise; the silhouette moves by a constant step per frame and bobs up and down, so
    consecutive frames are similar, as in a real video. Deterministic for a given ``seed``.
    """
    height, width = image_size
    gen = torch.Generator().manual_seed(seed)
    ys = torch.linspace(0, 1, height).view(height, 1)
    xs = torch.linspace(0, 1, width).view(1, width)
    top, bottom = torch.rand(3, generator=gen), torch.rand(3, generator=gen)
    background = top.view(3, 1, 1) * (1 - ys) + bottom.view(3, 1, 1) * ys  # (3, H, 1)
    background = background.expand(3, height, width) * (0.8 + 0.2 * xs)  # (3, H, W)
    person_colour = torch.rand(3, generator=gen)
    skin_rgb = torch.tensor([0.85, 0.65, 0.5])

    frames = []
    for t in range(num_frames):
        cx = 0.2 + 0.6 * t / max(num_frames - 1, 1)  # centre x in [0.2, 0.8]
        cy = 0.35 + 0.02 * np.sin(t)  # head centre bobs while walking
        head = ((xs - cx) / 0.09) ** 2 + ((ys - cy) / 0.12) ** 2 <= 1.0  # (H, W) ellipse
        torso = ((xs - cx) / 0.25) ** 2 + ((ys - (cy + 0.45)) / 0.33) ** 2 <= 1.0
        torso = torso & (ys >= cy + 0.15)
        mask = (head | torso).to(torch.int64)  # (H, W)
        image = torch.where(head, skin_rgb.view(3, 1, 1), background)
        image = torch.where(torso, person_colour.view(3, 1, 1), image)
        noise = 0.03 * torch.randn(3, height, width, generator=gen)
        image01 = (image + noise).clamp(0, 1)  # (3, H, W)
        frames.append((normalize(image01.permute(1, 2, 0).numpy()), mask))
    return frames


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
