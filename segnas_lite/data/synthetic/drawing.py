"""Drawing helpers for the synthetic data: colours, shapes, textures and camera effects.

Every function paints with PIL (fast C code) and takes its random choices from the
``numpy.random.Generator`` it is given, so a picture depends only on that generator's state.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter

SKIN_TONES = np.array([(255, 224, 196), (241, 194, 125), (224, 172, 105), (198, 134, 66),
                       (141, 85, 36), (92, 56, 30)], dtype=np.float64)
HAIR_COLOURS = np.array([(20, 15, 12), (55, 38, 25), (105, 70, 40), (185, 150, 95),
                         (150, 150, 150), (140, 55, 25)], dtype=np.float64)


def jitter(rng, base, amount=15.0) -> tuple[int, int, int]:
    colour = np.clip(np.asarray(base, dtype=np.float64) + rng.uniform(-amount, amount, 3), 0, 255)
    return tuple(int(c) for c in colour)


def skin_colour(rng):
    return jitter(rng, SKIN_TONES[rng.integers(len(SKIN_TONES))], 18)


def hair_colour(rng):
    if rng.random() < 0.1:  # dyed hair: any colour
        return tuple(int(c) for c in rng.integers(0, 256, 3))
    return jitter(rng, HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))], 12)


def any_colour(rng):
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def distractor_colour(rng):
    """Colours for background clutter: often skin, hair or clothing-like, so that colour alone does
    not tell person from background."""
    pick = rng.random()
    if pick < 0.35:
        return skin_colour(rng)
    if pick < 0.5:
        return hair_colour(rng)
    return any_colour(rng)


def ellipse(cx, cy, rx, ry, angle=0.0, n=28) -> np.ndarray:
    """(n, 2) polygon approximating an ellipse rotated by ``angle`` (radians)."""
    t = np.linspace(0.0, 2.0 * np.pi, n, endpoint=False)
    x, y = rx * np.cos(t), ry * np.sin(t)
    c, s = math.cos(angle), math.sin(angle)
    return np.stack([cx + c * x - s * y, cy + s * x + c * y], axis=1)


def rotate_move(points, pivot, angle) -> list[tuple[float, float]]:
    """Rotate points (a list of (x, y) or an (n, 2) array) by ``angle`` about the origin, then move
    the origin to ``pivot``. Plain Python: faster than numpy for a handful of points."""
    c, s = math.cos(angle), math.sin(angle)
    px, py = pivot
    if isinstance(points, np.ndarray):
        points = points.tolist()
    return [(px + c * x - s * y, py + s * x + c * y) for x, y in points]


def ramp(rng, size: int, low: float = 0.0, high: float = 255.0) -> Image.Image:
    """(S, S) "L" image: a linear ramp from ``low`` to ``high`` along a random direction.

    A plane a*y + b*x + c splits into a row part and a column part, so the (S, S) image is one
    integer addition of two broadcast vectors (cheap)."""
    angle = rng.uniform(0, 2 * np.pi)
    axis = np.linspace(-0.5, 0.5, size) / (abs(math.sin(angle)) + abs(math.cos(angle)))
    rows = np.rint((high - low) * (axis * math.sin(angle) + 0.5) + low).astype(np.int16)  # (S,)
    cols = np.rint((high - low) * axis * math.cos(angle)).astype(np.int16)  # (S,)
    plane = np.clip(rows[:, None] + cols[None, :], 0, 255).astype(np.uint8)  # (S, S)
    return Image.fromarray(plane)


def solid(size: int, colour) -> Image.Image:
    return Image.new("RGB", (size, size), tuple(int(c) for c in colour))


def smooth_noise(rng, size: int, cells: int, mode: str = "L") -> Image.Image:
    """Smooth random field: a cells x cells grid of random values upsampled bilinearly."""
    shape = (cells, cells) if mode == "L" else (cells, cells, 3)
    coarse = rng.integers(0, 256, shape, dtype=np.uint8)
    return Image.fromarray(coarse).resize((size, size), Image.BILINEAR)


def texture(rng, size: int, base, strength: float = 1.0) -> Image.Image:
    """An RGB texture image: solid, stripes, checks, smooth noise or two-tone, around ``base``.
    Built as ``composite(second colour, base colour, weight)`` with an "L" weight image."""
    kind = rng.choice(["solid", "stripes", "checks", "noise", "twotone"], p=[0.3, 0.25, 0.1, 0.2, 0.15])
    if kind == "solid":
        return solid(size, base)
    second = any_colour(rng)
    axis = np.arange(size, dtype=np.float32)
    if kind == "stripes":
        angle = rng.choice([0.0, np.pi / 2, rng.uniform(0, np.pi)])
        period = rng.uniform(4, 24) * size / 256
        phase = axis[:, None] * math.sin(angle) + axis[None, :] * math.cos(angle)  # (S, S)
        weight = Image.fromarray(((phase % period) < period / 2).astype(np.uint8) * 255)
    elif kind == "checks":
        period = int(rng.uniform(6, 28) * size / 256) + 1
        cells = (np.arange(size) // period) % 2
        weight = Image.fromarray((cells[:, None] ^ cells[None, :]).astype(np.uint8) * 255)
    elif kind == "noise":
        weight = smooth_noise(rng, size, int(rng.integers(4, 24)))
        second = jitter(rng, base, 80)
    else:  # two-tone: one hard split across the garment
        threshold = int(rng.uniform(100, 230))
        weight = ramp(rng, size).point(lambda v: 255 if v > threshold else 0)
    if strength < 1.0:
        weight = weight.point(lambda v: int(v * strength))
    picture = solid(size, base)
    picture.paste(tuple(int(c) for c in second), mask=weight)  # second colour where weight is high
    return picture


def draw_clutter(rng, canvas: Image.Image, size: int, count: int, fill=None) -> None:
    """Random ellipses, boxes, polygons and thick lines painted on ``canvas``, each in a distractor
    colour (or in ``fill`` when given, e.g. 255 to draw a stencil into an "L" image)."""
    draw = ImageDraw.Draw(canvas)
    for _ in range(count):
        colour = distractor_colour(rng) if fill is None else fill
        cx, cy = rng.uniform(-0.1, 1.1, 2) * size
        r = rng.uniform(0.03, 0.25) * size
        kind = rng.integers(4)
        if kind == 0:
            draw.polygon(rotate_move(ellipse(0, 0, r, r * rng.uniform(0.3, 1.0), n=20), (cx, cy),
                                    rng.uniform(0, np.pi)), fill=colour)
        elif kind == 1:
            draw.rectangle([cx - r, cy - r * rng.uniform(0.2, 1.5), cx + r, cy + r], fill=colour)
        elif kind == 2:
            n = int(rng.integers(3, 7))
            angles = np.sort(rng.uniform(0, 2 * np.pi, n))
            radii = r * rng.uniform(0.4, 1.0, n)
            pts = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1)
            draw.polygon([tuple(p) for p in pts.tolist()], fill=colour)
        else:
            x2, y2 = rng.uniform(-0.1, 1.1, 2) * size
            draw.line([(cx, cy), (x2, y2)], fill=colour, width=max(1, int(r * 0.3)))


# _NOISE_LUTS[amp] maps a random byte to 0..2*amp (one table per band, three bands).
_NOISE_LUTS = [[v * 2 * amp // 255 for v in range(256)] * 3 for amp in range(64)]


def camera_effects(rng, canvas: Image.Image, size: int, blur_prob=0.3, noise_max=12) -> np.ndarray:
    """What a camera adds to a clean drawing: optional blur, a lighting ramp (darker on one side),
    an occasional brightening and uniform pixel noise. Returns (S, S, 3) uint8."""
    if rng.random() < blur_prob:  # box blur: the cheapest blur PIL has, close enough to a Gaussian
        canvas = canvas.filter(ImageFilter.BoxBlur(rng.uniform(0.5, 1.5) * size / 256))
    if rng.random() < 0.75:  # uneven light: multiply by a ramp (255 = unchanged)
        light = ramp(rng, size, 255 * rng.uniform(0.45, 1.0), 255 * rng.uniform(0.85, 1.0))
        canvas = ImageChops.multiply(canvas, Image.merge("RGB", (light, light, light)))
    if rng.random() < 0.3:  # brighten: gain > 1 through a lookup table
        gain = rng.uniform(1.1, 1.5)
        canvas = canvas.point([min(255, int(v * gain)) for v in range(256)] * 3)
    if rng.random() < 0.7:
        amp = int(rng.integers(2, noise_max + 1))
        noise = Image.frombytes("RGB", (size, size), rng.bytes(size * size * 3))
        noise = noise.point(_NOISE_LUTS[amp])  # uniform in 0..2 amp
        canvas = ImageChops.add(canvas, noise, 1.0, -amp)  # canvas + noise - amp, clipped
    return np.asarray(canvas, dtype=np.uint8)
