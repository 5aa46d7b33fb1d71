"""Answer key for lesson 00 · Welcome and environment check (lessons/00_welcome.md).

Run it from the repository root::

    python lessons/solutions/00_welcome.py          # quick: the notebook's (tiny) settings
    python lessons/solutions/00_welcome.py --full   # the same models, longer thread timing

Each ``exercise_N`` does what exercise N of the lesson asks, with the library, and returns what it
measured as a dict; its docstring restates the question and gives the answer in words. Trained
models go through the same cache as the notebooks (``$SEGNAS_CACHE``, default
``~/.cache/segnas_lite``), so the second run is fast. Quick mode is forced on when ``CI`` or
``SEGNAS_QUICK=1`` is set, as in the notebooks.
"""
from __future__ import annotations

import sys
from pathlib import Path
import time

import numpy as np
import torch

from segnas_lite.data import open_dataset
from segnas_lite.data.synthetic.drawing import SKIN_TONES
from segnas_lite.train.engine import TrainConfig, predict, train
from segnas_lite.flags import cache_dir
from segnas_lite.metrics import iou
from segnas_lite.zoo import build_model
from segnas_lite.teaching.notebook_utils import setup, trained_model
from segnas_lite.timing import LoadMonitor

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the shared report
from report import run  # noqa: E402

SEED = 0
# The parameters cell of notebooks/00_welcome.ipynb (batch size 8, learning rate 0.05: the
# defaults of trained_model).
NOTEBOOK = dict(image_size=64, epochs=3, train_length=160, val_length=16)
# Exercise 1: the same run with IMAGE_SIZE = 128 and EPOCHS = 4. Notebook 00 is CI-sized already
# (it has no separate quick settings), so quick and full runs of this key train the same models.
BIGGER = dict(NOTEBOOK, image_size=128, epochs=4)


def _training_seconds(history: list[dict]) -> float:
    """Seconds the training took, read from the history (also when the model came from the cache:
    every epoch record stores its own ``seconds``)."""
    return float(sum(record["seconds"] for record in history))


def exercise_1(*, quick: bool = True) -> dict:
    """Set IMAGE_SIZE = 128 and EPOCHS = 4: how do the mIoU and the training time change?

    Answer: the training takes several times longer, but the mIoU does not simply go up: with the
    notebook's seed it stays about where it was (it even drops a little; with 16 validation images
    a few hundredths are noise). Two things changed. (1) Four times as many pixels per image, so
    every step costs more: convolution cost grows with the pixel count, and with the extra epoch a
    compute-bound run would take (128/64)^2 * 4/3 = 5.3x longer. The measured ratio is usually
    smaller, because at 64 px much of a step is fixed overhead (Python, per-layer calls, drawing
    the images) that does not grow with the pixels. (2) One third more steps (80 instead of 60),
    but on the same 160 images: more pixels show the same people in more detail, they are not
    more examples. At 128 px a person spans twice as many positions of every feature map while the
    network is the same, so the same few steps have a larger pattern to learn. What limits a
    model trained for 80 steps is the number of steps and images, not the resolution; finer
    detail (hair, arms, edges) pays off once a model trains longer (notebooks 02 and 03 train
    their 128 px models for 300 steps). Because ``trained_model`` builds its cache key from all
    settings, the 128 px model is a new cache entry and the 64 px one stays cached beside it
    (``cached_models`` lists both).
    The training time is the sum of the epochs' ``seconds`` in the history, so it is also known for
    a model loaded from the cache; the first epoch also pays one-off start-up costs and anything
    else that ran on the machine at the time (``epoch_seconds`` shows each epoch). Notebook 00 is
    CI-sized already, so quick mode runs the exercise as asked (about 60 + 80 steps).
    """
    setup(quick=quick, seed=SEED)
    base_settings, bigger_settings = NOTEBOOK, BIGGER
    _, base_history = trained_model("fast_scnn", seed=SEED, **base_settings)
    _, bigger_history = trained_model("fast_scnn", seed=SEED, **bigger_settings)
    base_seconds = _training_seconds(base_history)
    bigger_seconds = _training_seconds(bigger_history)
    compute_bound_ratio = ((bigger_settings["image_size"] / base_settings["image_size"]) ** 2
                           * bigger_settings["epochs"] / base_settings["epochs"])
    cached_models = sorted(p.stem for p in (cache_dir() / "results").glob("trained_fast_scnn-*.pt"))
    result = {
        "base_settings": base_settings,
        "bigger_settings": bigger_settings,
        "base_miou": base_history[-1]["val_miou"],
        "bigger_miou": bigger_history[-1]["val_miou"],
        "base_seconds": base_seconds,
        "bigger_seconds": bigger_seconds,
        "time_ratio": bigger_seconds / base_seconds,
        "compute_bound_ratio": compute_bound_ratio,
        "base_epochs": len(base_history),
        "bigger_epochs": len(bigger_history),
        "epoch_seconds": {"base": [r["seconds"] for r in base_history],
                          "bigger": [r["seconds"] for r in bigger_history]},
        "cached_models": cached_models,
    }
    result["summary"] = (f"mIoU {result['base_miou']:.3f} -> {result['bigger_miou']:.3f}; training "
                         f"{base_seconds:.1f} s -> {bigger_seconds:.1f} s "
                         f"(x{result['time_ratio']:.1f}; x{compute_bound_ratio:.1f} if every step "
                         "cost grew with the pixels)")
    return result


def exercise_2(*, quick: bool = True) -> dict:
    """torch.set_num_threads(1) before training: how much slower, and why not by the thread count?

    Answer: training gets slower, but by less than the thread count ``n``. Only the work inside
    PyTorch's operators (convolutions, matrix products, large element-wise ops) is split over
    threads; drawing the synthetic images, the DataLoader, the Python loop and the optimizer's
    bookkeeping run in one thread whatever the setting, and small tensors (64 px images, 2 x 2 maps
    at 1/32) are not worth splitting at all. Amdahl's law says how much this caps the gain: if a
    share ``p`` of the time parallelises, ``n`` threads give a speed-up ``1 / ((1 - p) + p / n)``;
    the function solves this for ``p`` from the measurement. Timing the data preparation alone shows
    one part that cannot speed up. Note for the notebook: the training cell calls ``trained_model``,
    which loads the cached model instantly when the settings are unchanged, so to see the slowdown
    there pass ``refresh=True`` (or change a setting). This function trains without the cache, a
    few steps with each thread count after one warm-up step, and watches the machine with
    ``timing.LoadMonitor``: when other programs use the CPU (``machine_busy``), two threads
    compete with them for two cores, and the "parallel" run can even be the slower one (a thread
    waits for its partner to be scheduled), so such a measurement says nothing about Amdahl's
    ``p`` (returned as NaN when the slowdown is not between 1 and ``n``). On a 1-core machine there
    is nothing to compare (both runs use one thread).
    """
    settings = setup(quick=quick, seed=SEED)
    image_size, steps = (64, 8) if settings.quick else (NOTEBOOK["image_size"], 40)
    train_set = open_dataset("synthetic", image_size=image_size, split="train", seed=SEED,
                             length=8 * steps)
    default_threads = torch.get_num_threads()

    def seconds_to_train(threads: int, steps_to_run: int) -> float:
        torch.set_num_threads(threads)
        torch.manual_seed(SEED)
        model = build_model("fast_scnn", num_classes=2)
        config = TrainConfig(epochs=1, batch_size=8, lr=0.05, seed=SEED, quiet=True,
                             steps_per_epoch=steps_to_run)
        return train(model, train_set, config=config, num_classes=2).history[0]["seconds"]

    try:
        seconds_to_train(default_threads, 1)  # warm-up: allocator, thread pool, first-call costs
        with LoadMonitor(warn=False, what="the thread comparison") as monitor:
            many = seconds_to_train(default_threads, steps)
            one = seconds_to_train(1, steps)
    finally:
        torch.set_num_threads(default_threads)  # leave the process as we found it

    started = time.perf_counter()  # the data alone: drawing and normalising the same images
    for index in range(8 * steps):
        train_set[index]
    data_seconds = time.perf_counter() - started

    slowdown = one / many
    if default_threads > 1 and 1.0 <= slowdown <= default_threads:
        # Amdahl: slowdown = 1 / ((1 - p) + p / n), solved for p
        parallel_share = (1 - 1 / slowdown) / (1 - 1 / default_threads)
    else:  # one thread only, or a disturbed measurement
        parallel_share = float("nan")
    result = {
        "torch_threads": default_threads,
        "steps": steps,
        "image_size": image_size,
        "seconds_default_threads": many,
        "seconds_one_thread": one,
        "slowdown": slowdown,
        "data_seconds": data_seconds,
        "data_share_of_one_thread_run": data_seconds / one,
        "parallel_share_amdahl": parallel_share,
        "machine_busy": monitor.report.busy,
        "other_processes_cores": monitor.report.other_cores,
    }
    result["summary"] = (f"{steps} steps: {many:.2f} s with {default_threads} threads, {one:.2f} s "
                         f"with 1 (x{slowdown:.2f} slower, at most x{default_threads}); "
                         f"drawing the images alone took {data_seconds:.2f} s in one thread"
                         + ("; the machine was busy: do not trust these" if monitor.report.busy
                            else ""))
    return result


def _skin_coloured(picture: np.ndarray, tolerance: float = 30.0) -> np.ndarray:
    """(H, W) bool: pixels within ``tolerance`` (RGB distance) of one of the skin tones the
    synthetic portraits are painted with (``data.synthetic.drawing.SKIN_TONES``)."""
    distance = np.linalg.norm(picture[:, :, None, :].astype(np.float64) - SKIN_TONES, axis=-1)
    return distance.min(axis=-1) < tolerance


def _sharpness(picture: np.ndarray) -> float:
    """Mean absolute difference of neighbouring grey values: low for a blurred or flat image."""
    grey = picture.astype(np.float64).mean(axis=2)
    return float(np.abs(np.diff(grey, axis=0)).mean() + np.abs(np.diff(grey, axis=1)).mean())


def exercise_3(*, quick: bool = True) -> dict:
    """Which image in the viewer is predicted worst, and what makes it hard?

    Answer: the viewer's panel titles are the per-image mIoU (``metrics.iou(..., reduction="per_image")``); the worst
    image is the one with the lowest. This function computes it for the notebook's 8 validation
    images and measures what the lesson names as causes: how small the person is (its share of the
    pixels); skin colour, on the person (share of its pixels near one of the generator's skin
    tones) and in the background ("clutter in skin colours"); how much fine detail the picture has
    (mean neighbour difference: low when blurred or flat); and whether the errors are mostly false
    positives (background called person: clutter) or false negatives (person missed). ``reasons``
    names the measures where the worst image clearly stands out from the median of the other seven
    (person or detail below 3/4 of theirs, skin on the person below half, 10 points more skin
    colour in the background). With the notebook's model the worst image is mostly false
    negatives: a person the model hardly finds. After 60 steps the model leans on colour cues,
    above all a skin-coloured face over a body, more than on the outline: a person whose face is
    over-exposed or tinted (no skin tone), a small person (a few wrong pixels are a large share of
    a small class, and the 1/32 map holds a pixel or two of it) or skin-coloured clutter beside it
    is where it fails. Open the image ``worst_index`` in the viewer to see it.
    """
    setup(quick=quick, seed=SEED)
    run = NOTEBOOK
    model, _ = trained_model("fast_scnn", seed=SEED, **run)
    val_set = open_dataset("synthetic", image_size=run["image_size"], split="val", seed=SEED,
                           length=run["val_length"])
    images, masks = zip(*(val_set[i] for i in range(8)))  # the viewer's 8 images
    images, masks = torch.stack(images), torch.stack(masks)
    preds = predict(model, images)
    per_image = []
    for i in range(len(images)):
        picture, _ = val_set.render(i)  # the same picture as uint8, before normalisation
        skin = _skin_coloured(picture)
        mask, pred = masks[i], preds[i]
        per_image.append({
            "index": i,
            "miou": iou(pred, mask, num_classes=2, reduction="per_image"),
            "person_share": float((mask == 1).float().mean()),
            "false_positive_share": float(((pred == 1) & (mask == 0)).float().mean()),
            "false_negative_share": float(((pred == 0) & (mask == 1)).float().mean()),
            "person_skin_share": float(skin[mask.numpy() == 1].mean()),
            "background_skin_share": float(skin[mask.numpy() == 0].mean()),
            "sharpness": _sharpness(picture),
        })
    worst = min(per_image, key=lambda row: row["miou"])
    others = [row for row in per_image if row is not worst]

    def median(key: str) -> float:
        return float(np.median([row[key] for row in others]))

    reasons = []
    if worst["person_share"] < 0.75 * median("person_share"):
        reasons.append(f"a small person ({100 * worst['person_share']:.0f}% of the pixels, others "
                       f"{100 * median('person_share'):.0f}%)")
    if worst["person_skin_share"] < 0.5 * median("person_skin_share"):
        reasons.append(f"almost no skin colour on the person "
                       f"({100 * worst['person_skin_share']:.1f}% of it, others "
                       f"{100 * median('person_skin_share'):.0f}%)")
    if worst["background_skin_share"] > median("background_skin_share") + 0.10:
        reasons.append(f"clutter in skin colours ({100 * worst['background_skin_share']:.0f}% of "
                       f"the background, others {100 * median('background_skin_share'):.0f}%)")
    if worst["sharpness"] < 0.75 * median("sharpness"):
        reasons.append(f"little fine detail: blurred or flat (sharpness {worst['sharpness']:.1f}, "
                       f"others {median('sharpness'):.1f})")
    errors = ("mostly false positives: background taken for the person"
              if worst["false_positive_share"] > worst["false_negative_share"]
              else "mostly false negatives: parts of the person missed")
    result = {
        "per_image": per_image,
        "worst_index": worst["index"],
        "worst_miou": worst["miou"],
        "median_miou": float(np.median([row["miou"] for row in per_image])),
        "errors": errors,
        "reasons": reasons,
    }
    result["summary"] = (f"worst image {worst['index']} (mIoU {worst['miou']:.2f}, median "
                         f"{result['median_miou']:.2f}): {errors}; "
                         + ("; ".join(reasons) if reasons else "no single cause stands out"))
    return result


EXERCISES = (exercise_1, exercise_2, exercise_3)


def main(argv=None) -> None:
    run(EXERCISES, lesson="00", argv=argv)


if __name__ == "__main__":
    main()
