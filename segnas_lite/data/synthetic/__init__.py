"""Synthetic data drawn on the fly: no download, deterministic per ``(seed, index)``.

* ``portraits.py``: ``SyntheticPortraits`` (2 classes), a person on a cluttered background, with its
  proportions in ``PORTRAIT``;
* ``scenes.py``: ``SyntheticScenes`` (4 classes), street-like scenes with sky, ground, people and
  objects; ``write_scene_folder`` writes them to disk as a split folder (to try the folder commands);
* ``clips.py``: ``synthetic_video``, a short clip of a silhouette walking across the frame (the
  OpenVINO FPS demo);
* ``drawing.py``: the PIL drawing helpers (colours, shapes, textures, camera effects);
* ``base.py``: ``SyntheticDataset``, what both datasets share.

Every random choice comes from one ``numpy.random.Generator`` per sample (``item_rng``), so the same
(seed, index) always gives the same picture.
"""
from __future__ import annotations

from segnas_lite.data.synthetic.base import SyntheticDataset
from segnas_lite.data.synthetic.clips import synthetic_video
from segnas_lite.data.synthetic.portraits import PORTRAIT, BodyProportions, SyntheticPortraits
from segnas_lite.data.synthetic.scenes import SyntheticScenes, write_scene_folder

__all__ = ["PORTRAIT", "BodyProportions", "SyntheticDataset", "SyntheticPortraits", "SyntheticScenes",
           "synthetic_video", "write_scene_folder"]
