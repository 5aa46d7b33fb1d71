"""Image and mask files: reading them (one channel rule, one orientation rule) and resizing them.

Channel rule for files: every image is converted to RGB with PIL (grayscale is copied to the three
channels, the alpha channel of RGBA/LA is dropped, palette images are expanded). Images in modes
that have no 8-bit RGB meaning (16-bit "I;16", 32-bit "I", float "F") raise ``ChannelMismatchError``.
A mask must be single-channel (or palette indices); an RGB mask is accepted when its three
channels are identical, or when every colour is one of Pascal VOC's palette (read as its index,
with a warning: a VOC mask re-saved as RGB). Other colour masks are a named error that says how to
turn them into index masks (``colour_masks.index_masks``, ``segnas data index-masks``).

Orientation rule: a phone stores a photo as the sensor saw it and writes how to turn it in the EXIF
orientation tag (0x0112, values 1-8). Every image and mask is read upright, as viewers show it
(``UPRIGHT``: the turns of ``PIL.ImageOps.exif_transpose``). A mask is taken as drawn on the
upright photo, unless its shape is that of the photo's STORED pixels where the tag swaps width and
height (5-8): then it was drawn on them and is turned with its photo (``fit_mask``). A mask of
another size is then resized to its photo (nearest neighbour).
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segnas_lite.data.errors import ChannelMismatchError, MissingFolderError, UnreadableImageError
from segnas_lite.data.palette import colours_text, voc_indices
from segnas_lite.data.transforms import normalize

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif")
ORIENTATION_TAG = 0x0112  # EXIF "Orientation"
UPRIGHT = {  # EXIF orientation -> how the stored (H, W, ...) pixels are turned to show them upright
    1: lambda a: a,                                   # stored upright
    2: lambda a: a[:, ::-1],                          # mirrored left-right
    3: lambda a: a[::-1, ::-1],                       # upside down (180 degrees)
    4: lambda a: a[::-1],                             # mirrored top-bottom
    5: lambda a: np.swapaxes(a, 0, 1),                # transposed (main diagonal)
    6: lambda a: np.rot90(a, -1),                     # turned 90 degrees clockwise to view
    7: lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1],    # transposed along the other diagonal
    8: lambda a: np.rot90(a, 1),                      # turned 90 degrees anticlockwise to view
}
SWAPS_SIDES = (5, 6, 7, 8)  # the orientations whose upright picture is W x H


def natural_key(path: Path):
    """Sort "2.jpg" before "10.jpg": digits compare as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def list_images(folder: Path) -> list[Path]:
    """The image files of a folder in natural order. Hidden files are not images: macOS writes
    ``._photo.jpg`` beside every photo it copies to another disk or zips, and ``.DS_Store``."""
    if not folder.is_dir():
        raise MissingFolderError(f"folder {folder} does not exist; check the path")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
             and not p.name.startswith(".")]
    return sorted(files, key=natural_key)


def open_image(path: Path) -> Image.Image:
    """Open a file with PIL, turning any decoding failure into ``UnreadableImageError``."""
    if not Path(path).is_file():
        raise UnreadableImageError(f"no image file at {path}: check the path")
    if Path(path).stat().st_size == 0:
        raise UnreadableImageError(f"cannot read {path}: the file is empty (0 bytes), often an "
                                   "interrupted copy or download. Copy it again, or remove it.")
    try:
        image = Image.open(path)
        image.load()
        return image
    except Exception as error:  # PIL raises several types (UnidentifiedImageError, OSError, ...)
        raise UnreadableImageError(
            f"cannot read {path}: {error}. Remove the file or re-save it as PNG/JPEG.") from error


def orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image (1, upright, when absent, unreadable or invalid)."""
    try:
        value = int(image.getexif().get(ORIENTATION_TAG, 1))
    except Exception:  # a broken EXIF block must not make a readable photo unreadable
        return 1
    return value if value in UPRIGHT else 1


def upright(pixels: np.ndarray, image: Image.Image) -> np.ndarray:
    """``pixels`` of ``image`` (its stored (H, W, ...) array) turned as its EXIF tag says."""
    return np.ascontiguousarray(UPRIGHT[orientation(image)](pixels))


def upright_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file as viewers show it, from its header (no pixels read)."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            return (height, width) if orientation(image) in SWAPS_SIDES else (width, height)
    except Exception as error:
        raise UnreadableImageError(
            f"cannot read {path}: {error}. Remove the file or re-save it as PNG/JPEG.") from error


def read_rgb(path: Path) -> np.ndarray:
    """Image file -> (H, W, 3) uint8, upright, following the channel and orientation rules of the
    module docstring."""
    image = open_image(path)
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        raise ChannelMismatchError(
            f"{path} is a {image.mode} (16/32-bit or float) image; save it as 8-bit RGB or grayscale")
    return upright(np.asarray(image.convert("RGB"), dtype=np.uint8), image)


def read_mask(path: Path) -> np.ndarray:
    """Mask file -> (H, W) integer array of raw values (palette PNGs give their indices), upright
    when the mask carries an EXIF orientation of its own."""
    mask = open_image(path)
    return upright(_mask_values(mask, path), mask)


def _mask_values(mask: Image.Image, path: Path) -> np.ndarray:
    """The (H, W) raw values of an opened mask, as stored."""
    if mask.mode in ("L", "P", "1", "I", "I;16", "I;16B", "I;16L"):
        return np.asarray(mask.convert("L") if mask.mode == "1" else mask)
    if mask.mode in ("LA", "RGBA"):
        pixels = np.asarray(mask)
        colour, alpha = pixels[..., :-1], pixels[..., -1]
        grey = colour[..., 0]
        same = all((colour[..., i] == grey).all() for i in range(1, colour.shape[-1]))
        if alpha.min() != alpha.max() and (not same or grey.min() == grey.max()):
            raise ChannelMismatchError(
                f"mask {path} is a cut-out: its shape is in the alpha (transparency) channel, "
                f"values {alpha.min()}..{alpha.max()}, which a mask file does not use; its "
                f"{'colours are the photo' if not same else 'grey value is the same everywhere'}. "
                "Save the alpha channel as a grayscale PNG mask, e.g. in Python "
                "PIL.Image.open(path).getchannel('A').save(mask_path), then read its values as "
                "classes (--mask-mapping 0:0,255:1 for a 0/255 mask).")
        if same:
            return grey
    if mask.mode in ("RGB", "RGBA"):
        rgb = np.asarray(mask)[..., :3]
        if (rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 0] == rgb[..., 2]).all():
            return rgb[..., 0]
        return _colour_mask(rgb, path)
    raise ChannelMismatchError(f"mask {path} has unsupported mode {mask.mode}; save it as 8-bit grayscale")


_VOC_WARNED: list[bool] = []


def _colour_mask(rgb: np.ndarray, path: Path) -> np.ndarray:
    """A mask painted in colours: Pascal VOC's palette is read as its indices (warned once per
    process); other colours cannot be guessed and are a ``ChannelMismatchError`` saying how to
    convert them."""
    indices = voc_indices(rgb)
    if indices is not None:
        if not _VOC_WARNED:
            _VOC_WARNED.append(True)
            warnings.warn(f"colour masks such as {path} are read as Pascal VOC palette colours "
                          f"({colours_text(rgb)} -> classes {np.unique(indices).tolist()}); "
                          "convert them with segnas data index-masks if they mean other classes",
                          stacklevel=3)
        return indices
    raise ChannelMismatchError(
        f"mask {path} paints its classes in colours ({colours_text(rgb)}) that are not Pascal "
        "VOC's palette: a mask must hold one class index per pixel. Write index masks from a "
        "colour table with: segnas data index-masks MASKS OUT --colours "
        "'#000000:0,#ff0000:1' (segnas data index-masks MASKS alone lists every colour the folder "
        "uses and suggests a table), then train on OUT."
        + (" A JPEG mask blurs its colours at every edge: export the masks as PNG first."
           if path.suffix.lower() in (".jpg", ".jpeg") else ""))


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 -> (size[0], size[1], 3), bilinear."""
    return np.asarray(Image.fromarray(image).resize((size[1], size[0]), Image.BILINEAR))


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W) integer mask -> (size[0], size[1]) with nearest neighbour (labels are never mixed)."""
    if mask.dtype == np.uint8:
        return np.asarray(Image.fromarray(mask).resize((size[1], size[0]), Image.NEAREST))
    rows = (np.arange(size[0]) + 0.5) * mask.shape[0] / size[0]
    cols = (np.arange(size[1]) + 0.5) * mask.shape[1] / size[1]
    return mask[rows.astype(np.int64)][:, cols.astype(np.int64)]


def drawn_on_stored_pixels(mask_size: tuple[int, int], photo_path: Path) -> bool:
    """Whether a mask of ``mask_size`` (width, height) has the shape of the STORED pixels of a
    photo whose EXIF tag turns it by 90 degrees, and not of its upright picture: it was drawn on
    them (at their size, or scaled: the shape is the ratio of the sides, within 1%)."""
    try:
        with Image.open(photo_path) as photo:
            turn, (width, height) = orientation(photo), photo.size
    except Exception:
        return False
    stored, mask = width / height, mask_size[0] / mask_size[1]
    return (turn in SWAPS_SIDES and abs(stored - 1.0) > 0.02
            and abs(mask / stored - 1.0) <= 0.01)


def fit_mask(mask: np.ndarray, shape: tuple[int, int], photo_path: Path) -> np.ndarray:
    """A (h, w) mask brought to its upright photo's (H, W) ``shape``: a mask drawn on the photo's
    stored pixels (``drawn_on_stored_pixels``) is turned with the photo; then a mask of another
    size is resized (nearest neighbour)."""
    if mask.shape == tuple(shape):
        return mask
    if drawn_on_stored_pixels(mask.shape[::-1], photo_path):
        with Image.open(photo_path) as photo:
            mask = upright(mask, photo)
    return mask if mask.shape == tuple(shape) else resize_mask(mask, shape)


def load_image(path, *, image_size: int | None = None) -> torch.Tensor:
    """Read one image file -> (3, H, W) float32 tensor, ImageNet-normalised (used by ``segnas
    predict``). With ``image_size`` the image is resized (bilinear) to image_size x image_size."""
    image = read_rgb(Path(path))
    if image_size is not None:
        image = resize_rgb(image, (image_size, image_size))
    return normalize(image)
