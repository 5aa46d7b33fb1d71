"""The named errors of the data package: each message says which file or folder to fix.

Catch ``DatasetError`` to catch them all.
"""
from __future__ import annotations

from segnas_lite.errors import SegnasError


class DatasetError(SegnasError):
    """Base class of every data error in segnas_lite (catch this one to catch them all)."""


class MissingFolderError(DatasetError, FileNotFoundError):
    """A folder the dataset needs does not exist."""


class EmptyDatasetError(DatasetError):
    """A folder (or split list) holds no usable image."""


class UnreadableImageError(DatasetError):
    """PIL cannot decode a file (corrupt, truncated or not an image)."""


class MissingMaskError(DatasetError):
    """An image has no mask with the same file stem."""


class SharedNameError(DatasetError):
    """Two photos of one folder share a file stem (``a.jpg``, ``a.png``): one mask would label
    both."""


class MissingImageError(DatasetError):
    """A file list (e.g. a VOC split) names an image that is not in the image folder."""


class MaskValueError(DatasetError):
    """A mask holds values outside the class set."""


class MaskMappingError(DatasetError, ValueError):
    """The class set itself is wrong: a mapping target outside the classes, a bad option value."""


class ChannelMismatchError(DatasetError):
    """An image or mask has a channel layout that cannot be used."""


class UnknownSourceError(DatasetError):
    """``open_dataset`` got a source that is neither a known name nor a known folder layout."""


class ClassSetMismatchError(DatasetError):
    """Datasets read as one (``concat.ConcatFolders``) have different class sets."""
