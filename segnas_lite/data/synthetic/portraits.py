"""``SyntheticPortraits`` (2 classes): a person on a cluttered background, drawn on the fly.

The figure's proportions are the dataclass ``BodyProportions`` (``PORTRAIT``); the PIL drawing
helpers (colours, clutter, textures, camera effects) are in ``drawing.py``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from segnas_lite.data.synthetic.base import SyntheticDataset
from segnas_lite.data.synthetic.drawing import (any_colour, camera_effects, distractor_colour, draw_clutter,
                                                ellipse, hair_colour, jitter, ramp, rotate_move,
                                                skin_colour, smooth_noise, solid, texture)
from segnas_lite.data.transforms import CONTENT_STREAM, item_rng


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


class SyntheticPortraits(SyntheticDataset):
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
