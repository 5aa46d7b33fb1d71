"""Answer key for lesson 01 · Data, augmentations and masks (lessons/01_data.md).

Run it from the repository root::

    python lessons/solutions/01_data.py          # quick: 64 px images, a few seconds
    python lessons/solutions/01_data.py --full   # the workshop-sized settings of the notebook

Each ``exercise_N`` does what exercise N of the lesson asks, with the library, and returns what it
measured as a dict; its docstring restates the question and gives the answer in words. Quick mode is
forced on when ``CI`` or ``SEGNAS_QUICK=1`` is set, as in the notebooks.
"""
from __future__ import annotations

import sys

import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from segnas_lite.data import (IMAGENET_MEAN, PairedAugment, SyntheticPortraits, SyntheticScenes,
                              open_dataset)
from segnas_lite.data.check import check_folder
from segnas_lite.data.synthetic import write_scene_folder
from segnas_lite.teaching.notebook_utils import setup

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import run  # noqa: E402

SEED = 0
# The class set of the folder in section 5 of the notebook (CamVid-style: raw 11 = "no label").
CLASS_SET = dict(num_classes=4, ignore_index=11, class_names=("sky", "ground", "person", "object"))


def _image_size(quick: bool) -> int:
    """The notebook's IMAGE_SIZE: 64 px in quick mode, 128 px in the workshop run."""
    return 64 if quick else 128


def exercise_1(*, quick: bool = True) -> dict:
    """PairedAugment(scale_range=(0.3, 0.6)): what happens to the ignore share, why can it hurt?

    Answer: the ignore share jumps from about a tenth to well over half of the pixels. A zoom by
    ``s < 1`` shows the whole picture shrunk into an ``s W x s H`` patch of the ``W x H`` output
    (``PairedAugment`` places the window so that the source stays inside it); the rest of the output
    lies outside the source and becomes 255 in the mask (mean colour in the image). So a zoom-out
    leaves ``1 - s^2`` of the pixels without a label. With the default ``scale_range=(0.5, 2.0)``
    only a third of the draws zoom out at all, and mildly; with ``(0.3, 0.6)`` every zoom is a
    strong zoom-out (1 - s^2 between 64% and 91%), applied with ``scale_prob = 0.8``. The function
    measures the share on augmented portraits and compares it with this expectation,
    ``scale_prob * E[max(0, 1 - s^2)]`` for ``s ~ U(scale_range)``.
    Why it hurts: (1) most pixels carry no loss, so every batch holds far fewer labelled pixels
    and the gradient is noisier for the same cost; (2) the person is always tiny (``person_share``
    falls), while the validation and test people are large: the training distribution of object
    sizes no longer matches the test one, and the 1/32 map holds only a pixel or two of the person;
    (3) the large flat mean-colour borders never occur at test time. Random scaling should be
    centred on the test scale (DeepLab uses 0.5 to 2.0 around 1).
    """
    settings = setup(quick=quick, seed=SEED)
    pictures, draws = (16, 4) if settings.quick else (100, 4)
    size = _image_size(settings.quick)
    portraits = SyntheticPortraits(length=pictures, image_size=size, seed=SEED)

    def measure(augment: PairedAugment) -> tuple[float, float]:
        """Mean shares of ignore and person pixels over ``pictures x draws`` augmentations."""
        ignore, person = [], []
        for index in range(pictures):
            picture, labels = portraits.render(index)  # uint8 (S, S, 3), (S, S)
            for draw in range(draws):
                rng = np.random.default_rng([SEED, index, draw])
                _, aug_mask = augment(picture, labels, rng)
                ignore.append((aug_mask == 255).mean())
                person.append((aug_mask == 1).mean())
        return float(np.mean(ignore)), float(np.mean(person))

    def expected_ignore(augment: PairedAugment) -> float:
        """scale_prob * E[max(0, 1 - s^2)] for s uniform in scale_range (a fine grid average)."""
        s = np.linspace(*augment.scale_range, 10_001)
        return float(augment.scale_prob * np.maximum(0.0, 1.0 - s ** 2).mean())

    default, small = PairedAugment(), PairedAugment(scale_range=(0.3, 0.6))
    default_ignore, default_person = measure(default)
    small_ignore, small_person = measure(small)
    result = {
        "augmentations": pictures * draws,
        "ignore_share_default": default_ignore,
        "ignore_share_small_scale": small_ignore,
        "expected_ignore_default": expected_ignore(default),
        "expected_ignore_small_scale": expected_ignore(small),
        "person_share_default": default_person,
        "person_share_small_scale": small_person,
    }
    result["summary"] = (f"ignore pixels {100 * default_ignore:.0f}% -> {100 * small_ignore:.0f}% "
                         f"(expected {100 * result['expected_ignore_default']:.0f}% -> "
                         f"{100 * result['expected_ignore_small_scale']:.0f}%); person pixels "
                         f"{100 * default_person:.0f}% -> {100 * small_person:.0f}%")
    return result


def exercise_2(*, quick: bool = True) -> dict:
    """Which scene class is most often absent, checked with (mask == c).any() over 200 masks?

    Answer: sky and ground are in every scene (the horizon lies between 30% and 60% of the height
    and the things standing on the ground never reach the top). Person and object are the ones that
    go missing: a scene holds 1 to 6 things, each a person or an object with equal chance, so a
    class is left out of about (1/6) * (1/2 + 1/4 + ... + 1/64) = 16% of the scenes, a little
    more once things that stand outside the frame or hide behind nearer ones are counted. The two
    are therefore absent about equally often; which of them is "most often absent" in 200 masks is
    partly luck (``absent_share`` gives both). It matters for mIoU: in an image without the class,
    any pixel predicted as that class is a false positive with no true positive to balance it, and
    per-image IoU of an absent class is undefined (``metrics`` leaves it out of the mean).
    """
    settings = setup(quick=quick, seed=SEED)
    count = 200
    scenes = SyntheticScenes(length=count, image_size=_image_size(settings.quick), seed=SEED)
    masks = [scenes[i][1] for i in range(count)]
    present = {name: sum(bool((mask == c).any()) for mask in masks)
               for c, name in enumerate(scenes.class_names)}
    absent_share = {name: 1 - n / count for name, n in present.items()}
    most_absent = max(absent_share, key=absent_share.get)
    result = {"masks": count, "present": present, "absent_share": absent_share,
              "most_often_absent": most_absent}
    shares = ", ".join(f"{name} {100 * share:.0f}%" for name, share in absent_share.items())
    result["summary"] = (f"'{most_absent}' is absent from {100 * absent_share[most_absent]:.0f}%"
                         f" of {count} masks (absent: {shares})")
    return result


def exercise_3(*, quick: bool = True) -> dict:
    """Set cutout_prob=0. Why does cutout leave the mask alone?

    Answer: cutout (DeVries & Taylor, 2017) paints a square of the IMAGE in the mean colour, but the
    person is still there: the label of a hidden pixel is what the scene holds, not "grey square".
    Keeping the mask forces the network to infer the hidden part from the visible context (the rest
    of the body, the outline), which is the regularisation cutout is for: it cannot rely on one
    local patch. Setting the hidden labels to background would teach a wrong label; setting them to
    ignore would remove the lesson. The function checks it: (a) cutout alone (every other
    augmentation off, ``cutout_prob=1``) changes only a square of the image, painted in the mean
    colour, and returns the mask unchanged; (b) with the same random draws, ``PairedAugment()`` and
    ``PairedAugment(cutout_prob=0)`` give identical masks (cutout is the last step and draws its
    own random numbers either way), and their images differ only where cutout struck (about 30% of
    the draws, ``cutout_prob = 0.3``).
    """
    settings = setup(quick=quick, seed=SEED)
    draws = 16 if settings.quick else 100
    portraits = SyntheticPortraits(length=draws, image_size=_image_size(settings.quick), seed=SEED)
    mean_colour = np.round(255 * np.array(IMAGENET_MEAN)).astype(np.uint8)

    # (a) cutout alone
    only_cutout = PairedAugment(scale_prob=0, flip_prob=0, color_prob=0, blur_prob=0,
                                sharpen_prob=0, cutout_prob=1.0)
    picture, labels = portraits.render(0)
    image, mask = only_cutout(picture, labels, np.random.default_rng([SEED, 0]))
    changed = (image != picture).any(axis=2)  # (S, S) pixels cutout painted
    cutout_mask_unchanged = bool((mask == labels).all())
    changed_pixels_are_mean = bool((image[changed] == mean_colour).all())

    # (b) default augmentation with and without cutout, same random draws
    with_cutout, without_cutout = PairedAugment(), PairedAugment(cutout_prob=0)
    masks_identical, images_differ = 0, 0
    for index in range(draws):
        picture, labels = portraits.render(index)
        image_a, mask_a = with_cutout(picture, labels, np.random.default_rng([SEED, index]))
        image_b, mask_b = without_cutout(picture, labels, np.random.default_rng([SEED, index]))
        masks_identical += bool((mask_a == mask_b).all())
        images_differ += bool((image_a != image_b).any())
    result = {
        "cutout_only_mask_unchanged": cutout_mask_unchanged,
        "cutout_only_changed_share": float(changed.mean()),
        "cutout_only_changed_pixels_are_mean_colour": changed_pixels_are_mean,
        "draws": draws,
        "masks_identical_with_and_without_cutout": masks_identical,
        "images_changed_by_cutout": images_differ,
    }
    result["summary"] = (f"cutout painted {100 * changed.mean():.0f}% of the image, mask "
                         f"unchanged: {cutout_mask_unchanged}; with vs without cutout: "
                         f"{masks_identical}/{draws} masks identical, {images_differ}/{draws} "
                         "images differ")
    return result


def _mask_value_problems(report) -> list[str]:
    """The 'mask values' lines of a data report (one per bad mask)."""
    return list(report.problems.get("mask values", []))


def exercise_4(*, quick: bool = True) -> dict:
    """check_folder without CLASS_SET: which problem, which fix; what does unmapped="ignore" do?

    Answer: without a class set a folder has 2 classes, raw values 0 and 1, and 255 = ignore. The
    scene masks hold 0..3 and the "no label" value 11 in every corner, so every mask is reported
    under ``mask values`` (an error, listing the values 2, 3, 11 and, in train_0003, the stray 9).
    The fix is the class set: ``num_classes=4`` (values 0..3 are classes) *and* ``ignore_index=11``
    (11 means "no label"); either alone still leaves errors, and ``class_names`` only names the
    classes. With the full class set only ``train_0003.png`` is left, naming the value 9: a real
    labelling error the class set does not explain. With the class set and ``unmapped="ignore"``
    instead of the default ``"error"`` the 9 is no longer an error: its pixels (the 4 x 4 patch,
    16 pixels) become ignore (255, no loss). The function reads train_0003 through
    ``open_dataset`` with that class set to show the patch is 255 in the mask the loss sees. (In
    the report the ignored count grows by 32, not 16: with ``"error"`` the bad mask was not counted
    at all, so its 16 corner pixels of 11 join the 16 pixels of 9.)
    Use that only after looking at the stray values: ``unmapped="ignore"`` *without* a class set
    also silences every error, by ignoring the pixels of classes 2 and 3 and of 11 alike
    (``no_class_set_unmapped_ignore``), which would silently train a 2-class model on half the
    labels.
    """
    settings = setup(quick=quick, seed=SEED)
    if settings.quick:
        counts = {"train": 8, "val": 4, "test": 4}
    else:  # the notebook's folder
        counts = {"train": 24, "val": 8, "test": 8}
    with tempfile.TemporaryDirectory(prefix="segnas_scenes_") as tmp:
        folder = Path(tmp)
        write_scene_folder(folder, counts=counts, image_size=64, seed=SEED, void=11)
        broken_path = folder / "trainannot" / "train_0003.png"  # as in the notebook: a stray 9
        broken = np.asarray(Image.open(broken_path)).copy()
        broken[30:34, 30:34] = 9
        Image.fromarray(broken).save(broken_path)

        no_class_set = check_folder(folder, quiet=True)
        only_classes = check_folder(folder, quiet=True, num_classes=4)
        only_ignore = check_folder(folder, quiet=True, ignore_index=11)
        class_set = check_folder(folder, quiet=True, **CLASS_SET)
        class_set_ignore = check_folder(folder, quiet=True, unmapped="ignore", **CLASS_SET)
        no_class_set_ignore = check_folder(folder, quiet=True, unmapped="ignore")
        # the mask the loss sees for train_0003 with the class set and unmapped="ignore"
        train_set = open_dataset(folder, image_size=64, split="train", unmapped="ignore",
                                 **CLASS_SET)
        index = [image.name for image, _ in train_set.pairs].index("train_0003.png")
        loaded_mask = train_set[index][1].numpy()

    pairs = sum(no_class_set.pairs.values())
    strays = _mask_value_problems(class_set)
    result = {
        "pairs": pairs,
        "no_class_set_errors": no_class_set.errors,
        "no_class_set_problem_kinds": sorted(no_class_set.problems),
        "no_class_set_first_problem": _mask_value_problems(no_class_set)[0].replace(str(folder),
                                                                                  "FOLDER"),
        "only_num_classes_errors": only_classes.errors,
        "only_ignore_index_errors": only_ignore.errors,
        "class_set_errors": class_set.errors,
        "class_set_problems": [line.replace(str(folder), "FOLDER") for line in strays],
        "class_set_unmapped_ignore_errors": class_set_ignore.errors,
        "stray_pixels": int((broken == 9).sum()),
        "stray_pixels_loaded_as_ignore": int((loaded_mask[broken == 9] == 255).sum()),
        "void_pixels_of_that_mask": int((broken == 11).sum()),
        "extra_ignored_pixels": class_set_ignore.ignored_pixels - class_set.ignored_pixels,
        "no_class_set_unmapped_ignore_errors": no_class_set_ignore.errors,
        "no_class_set_unmapped_ignore_classes": list(no_class_set_ignore.class_names),
        "no_class_set_unmapped_ignore_ignored_share":
            no_class_set_ignore.ignored_pixels
            / (no_class_set_ignore.ignored_pixels + int(no_class_set_ignore.class_pixels.sum())),
    }
    result["summary"] = (f"no class set: {no_class_set.errors} of {pairs} masks fail "
                         f"'mask values'; num_classes=4 + ignore_index=11: {class_set.errors} "
                         f"left (the stray 9); "
                         f"+ unmapped='ignore': {class_set_ignore.errors} errors, the "
                         f"{result['stray_pixels']} pixels of 9 load as 255 (ignore)")
    return result


EXERCISES = (exercise_1, exercise_2, exercise_3, exercise_4)


def main(argv=None) -> None:
    run(EXERCISES, lesson="01", argv=argv)


if __name__ == "__main__":
    main()
