"""The real-photo recipe: the best people-val mIoU that 2 cores reach in a fixed number of minutes.

    python benchmarks/recipe.py                        # screen, then finals (hours of quiet CPU)
    python benchmarks/recipe.py --stage screen         # only the lever screen
    python benchmarks/recipe.py --quick                # a 2-minute smoke run of every code path

Every run trains from scratch on the people train split (80/20 cut, seed 0) and is scored on the
people val split at 256 px (two-class mIoU, ``engine.evaluate``). A budget is minutes of training
on this machine: a short calibration times each configuration's training step (``calibrate``), and
the run gets as many whole epochs as fit. Minutes are wall time of the training loop alone (the
evaluations for the curve are not counted), with the machine's load recorded (``load``: other
processes, the VM host's steal, speed-probe swings). The timing that decides a run is its
calibration: one marked busy must be measured again (delete it from the state). A training run
marked busy keeps its mIoU (for a given epoch count and seed training is deterministic on one CPU:
a busy and a quiet run of the same piece gave the same mIoU to 4 decimals) but its minutes are
not quoted.

Stages
1. **screen**: one model (``--screen-model``, LR-ASPP-Small) and ``--screen-minutes`` per run; the
   base recipe (``common.people_training``'s: 256 px, default augmentation, SGD lr 0.05, poly,
   cross-entropy) and one lever changed at a time: crop 160 px, light or strong augmentation,
   OHEM or boundary-weighted loss, cosine schedule with warm-up, synthetic-to-real pretraining
   (a share of the minutes on ``data.SyntheticPortraits``). Then the levers that beat the base by
   more than ``--margin`` together ("combined"). The winner of base, singles and combined is
   "the recipe".
2. **finals**: the recipe for ``--minutes`` (30) on Fast-SCNN, LR-ASPP-Small and the searched child
   (``--genotype``, default: seed 0's child at the largest budget of ``results/search.json``), an
   mIoU-vs-minutes curve each (evaluated every ``--eval-minutes``), plus the issue's starting point
   (20 epochs at 224 px, the old CLI defaults) for each. Then distillation: the child again, with
   the best final model as teacher (Hinton et al., 2015; ``distill.py``), same minutes.

**Several folders** (``--data A --data B``, issue 23: people + ccp_people): the train splits are
concatenated and so are the val splits (each folder cut with seed 0, the same cut as the search
study's); every final row also carries each folder's own val mIoU. ``--teacher-minutes M`` trains
a teacher (``--teacher-model``, LR-ASPP-Large by default, at ``--teacher-size``) for M minutes and
distils it into every model; ``--no-start`` skips the starting-point rows. Results go to
``results/recipe_combined.json`` unless ``--out`` says otherwise.

    python benchmarks/recipe.py --data ../shared/data/people --data ../shared/data/ccp_people \
        --no-start --teacher-minutes 90 --teacher-size 320 \
        --genotype benchmarks/results/recipe_child_genotype.json

``--genotype``: the searched child (default: seed 0's at the largest budget of
``results/search.json``; the combined study fixes the file, the child of the search study of
2026-11, so that a new search.json does not change a run half done).

``--soft-teacher DIR`` adds, per student, a run distilled from the soft masks of a model we
cannot import, saved as files (``data/soft_targets.py``; MediaPipe's, written by ``peers.py
--write-soft-masks DIR`` in its own environment): rows ``final_<model>_soft``, same recipe and
minutes. It may be given to a later run of a study started without it.

Resumable: each finished piece (calibration, run, curve point) is kept in ``results/recipe/state
.json``; a run stopped mid-way continues from its last epoch checkpoint (``engine.train``'s exact
resume). Checkpoints: ``results/recipe/runs/<run>/checkpoint.pt`` (``segnas evaluate`` reads them;
``benchmarks/peers.py --checkpoint`` and ``benchmarks/video.py --checkpoint`` take them).

Writes ``results/recipe.json`` and ``results/recipe.png`` (mIoU vs training minutes).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, ResumableState, environment, print_table, write_json  # noqa: E402

from segnas_lite.data import default_people_dir, open_dataset, open_datasets  # noqa: E402
from segnas_lite.data.soft_targets import SoftTargets  # noqa: E402
from segnas_lite.zoo import load_trained  # noqa: E402
from segnas_lite.train.engine import CHECKPOINT, evaluate, train  # noqa: E402
from segnas_lite.zoo import build_model  # noqa: E402
from segnas_lite.nas import Genotype  # noqa: E402
from segnas_lite.train.recipes import Recipe, pretrain_synthetic, synthetic_set  # noqa: E402
from segnas_lite.runio import atomic_open, load_checkpoint  # noqa: E402
from segnas_lite.timing import LoadMonitor  # noqa: E402

SPLIT_SEED = 0  # the people 80/20 cut every people benchmark uses
EVAL_SIZE = 256

# The base recipe: common.people_training's settings, as a Recipe.
BASE = Recipe("base", image_size=256, augment="default", lr=0.05, schedule="poly", loss="ce")
# One lever at a time (the screen).
LEVERS: dict[str, dict] = {
    "crop160": dict(crop=160),
    "light_aug": dict(augment="light"),
    "strong_aug": dict(augment="strong"),
    "ohem": dict(loss="ohem"),
    "boundary": dict(loss="boundary"),
    "cosine_warmup": dict(schedule="cosine", warmup_steps=100),
    "synthetic": dict(synthetic_steps=-1),  # -1: a share (--synthetic-share) of the minutes
}
# The starting point: 20 epochs at 224 px with the CLI's old defaults (lr 0.02).
START = Recipe("start", image_size=224, epochs=20, lr=0.02)


# --------------------------------------------------------------------------- data and models
def people_sets(data: list[str], recipe: Recipe, soft_dir: str | None = None):
    """The train splits of every folder of ``data`` (concatenated, the recipe's size and
    augmentation; with ``soft_dir``, each photo's saved soft mask beside it) and their val splits
    at ``EVAL_SIZE``; each folder cut with ``SPLIT_SEED``."""
    train_set = open_datasets(data, image_size=recipe.image_size, split="train", seed=SPLIT_SEED,
                              augment=recipe.augmentation())
    if soft_dir is not None:
        train_set = SoftTargets(train_set, soft_dir, sources=data)
    val_set = open_datasets(data, image_size=EVAL_SIZE, split="val", seed=SPLIT_SEED)
    return train_set, val_set


def per_set_miou(model, data: list[str]) -> dict[str, float]:
    """Val mIoU of ``model`` on each folder of ``data`` on its own (two or more folders)."""
    if len(data) < 2:
        return {}
    return {Path(folder).name: evaluate(model, open_dataset(folder, image_size=EVAL_SIZE,
                                                            split="val", seed=SPLIT_SEED),
                                        num_classes=2, quiet=True).miou for folder in data}


def searched_child_info(search_json: Path) -> dict:
    """Seed 0's searched child at the largest budget of ``benchmarks/search.py``'s results."""
    results = json.loads(search_json.read_text())
    rows = results["rows"]
    searched = [r for r in rows if r["kind"] == "searched" and r["label"].endswith("s0")]
    if not searched:
        raise SystemExit(f"{search_json} has no searched child; run benchmarks/search.py or pass "
                         "--genotype FILE")
    row = max(searched, key=lambda r: r["budget_frac"])
    genotype = Genotype(results["settings"]["space"], tuple(row["ops"]))
    return {"name": "nas_child", "kwargs": {"genotype": genotype.to_json()}}


def model_infos(args) -> dict[str, dict]:
    if args.genotype:
        child = {"name": "nas_child", "kwargs": {"genotype": Path(args.genotype).read_text()}}
    else:
        child = searched_child_info(RESULTS / "search.json")
    return {"fast_scnn": {"name": "fast_scnn", "kwargs": {}},
            "lraspp_small": {"name": "lraspp_mobilenetv3_small", "kwargs": {}},
            "searched_child": child}


def build(info: dict, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(info["name"], num_classes=2, **info.get("kwargs", {}))


# --------------------------------------------------------------------------- calibration
def step_seconds(info: dict, recipe: Recipe, *, source: str, data: list[str], teacher, seed: int,
                 steps: int, soft_dir: str | None = None) -> float:
    """Seconds per training step of ``info`` under ``recipe`` on ``source`` ("people" or
    "synthetic"): two short trainings of ``steps`` steps, the second one timed (the first warms
    the allocator and thread pools)."""
    model = build(info, seed)
    if source == "synthetic":
        data = synthetic_set(recipe, steps=steps, seed=seed)
    else:
        data, _ = people_sets(data, recipe, soft_dir)
    distilled = teacher is not None or soft_dir is not None
    config = recipe.train_config(seed=seed, quiet=True, epochs=1, steps_per_epoch=steps,
                                 distill_weight=0.5 if distilled else 0.0)
    train(model, data, config=config, num_classes=2, teacher=teacher)
    started = time.perf_counter()
    train(model, data, config=config, num_classes=2, teacher=teacher)
    return (time.perf_counter() - started) / steps


# --------------------------------------------------------------------------- one run
def run_one(key: str, info: dict, recipe: Recipe, *, minutes: float, args, state: ResumableState,
            teacher_path: Path | None = None, fixed_epochs: int | None = None,
            soft_dir: str | None = None) -> dict:
    """Train ``info`` with ``recipe`` for ``minutes`` (or ``fixed_epochs``) and return its row;
    resumes a run that was stopped. The row holds the final people-val mIoU and the curve. The
    teacher: a checkpoint (``teacher_path``) or saved soft masks (``soft_dir``), else none."""
    done = state.get("runs", key)
    if done is not None:
        return done
    teacher = load_trained(teacher_path, frozen=True)[0] if teacher_path is not None else None
    seed = args.seed
    calib = state.get("calibration", key)
    if calib is None:
        with LoadMonitor(warn=False, what=f"calibrating {key}") as monitor:
            calib = {"people_step_s": step_seconds(info, recipe, source="people",
                                                   data=args.data, teacher=teacher,
                                                   seed=seed, steps=args.calib_steps,
                                                   soft_dir=soft_dir)}
            if recipe.synthetic_steps:
                calib["synthetic_step_s"] = step_seconds(
                    info, recipe, source="synthetic", data=args.data, teacher=None,
                    seed=seed, steps=args.calib_steps)
        calib["busy"], calib["load"] = monitor.report.busy, monitor.report.to_dict()
        state.put("calibration", key, calib)
    train_set, val_set = people_sets(args.data, recipe, soft_dir)
    per_epoch = len(train_set) // recipe.batch_size
    budget_s = minutes * 60.0
    synthetic_steps = recipe.synthetic_steps
    if synthetic_steps < 0:  # a share of the minutes
        synthetic_steps = int(args.synthetic_share * budget_s / calib["synthetic_step_s"])
    left_s = budget_s - synthetic_steps * calib.get("synthetic_step_s", 0.0)
    epochs = fixed_epochs or max(1, int(left_s / (calib["people_step_s"] * per_epoch)))
    eval_every = max(1, round(args.eval_minutes * 60 / (calib["people_step_s"] * per_epoch)))
    run_dir = Path(args.results_dir) / "runs" / key
    model = build(info, seed)
    spent = {"synthetic_s": 0.0}
    if synthetic_steps:
        spent["synthetic_s"] = pretrain_resumable(model, recipe, steps=synthetic_steps,
                                                  run_dir=run_dir / "synthetic", seed=seed)
    config = recipe.train_config(seed=seed, quiet=not args.verbose, epochs=epochs,
                                 distill_weight=args.distill_weight
                                 if teacher is not None or soft_dir is not None else 0.0)
    resume = (run_dir / CHECKPOINT).exists()
    curve = state.get("curves", key, []) if resume else []  # no checkpoint: the run starts over
    clock = {"train_s": sum(r.get("seconds", 0.0) for r in _history(run_dir))}

    def on_epoch_end(record: dict) -> None:
        clock["train_s"] += record["seconds"]
        epoch = record["epoch"]
        if epoch % eval_every == 0 or epoch == epochs:
            metrics = evaluate(model, val_set, num_classes=2, quiet=True)
            minutes_so_far = (spent["synthetic_s"] + clock["train_s"]) / 60.0
            curve.append({"epoch": epoch, "minutes": round(minutes_so_far, 2),
                          "miou": metrics.miou})
            state.put("curves", key, curve)
            print(f"  {key}: epoch {epoch}/{epochs}, {minutes_so_far:.1f} min, "
                  f"mIoU {metrics.miou:.4f}", flush=True)

    data_info = {"data": args.data[0] if len(args.data) == 1 else list(args.data),
                 "val_data": None, "image_size": recipe.image_size,
                 "num_classes": 2, "class_names": ["background", "person"]}
    with LoadMonitor(warn=False, what=f"training {key}") as monitor:
        train(model, train_set, config=config, num_classes=2, out_dir=run_dir, resume=resume,
              model_info=info, teacher=teacher, data_info=data_info, on_epoch_end=on_epoch_end)
    final = curve[-1] if curve else {"miou": evaluate(model, val_set, num_classes=2,
                                                      quiet=True).miou}
    row = {"run": key, "model": info["name"], "recipe": asdict(recipe),
           "synthetic_steps": synthetic_steps, "epochs": epochs,
           "steps": epochs * per_epoch, "minutes_budget": minutes,
           "minutes": round((spent["synthetic_s"] + clock["train_s"]) / 60.0, 2),
           "miou": final["miou"],
           "teacher": str(teacher_path) if teacher_path else (soft_dir and f"soft masks {soft_dir}"),
           "checkpoint": str(run_dir / CHECKPOINT), "busy": monitor.report.busy,
           "load": monitor.report.to_dict(),  # why busy: other processes, steal or speed swings
           "resumed": resume, "params": sum(p.numel() for p in model.parameters()),
           "per_set_miou": per_set_miou(model, args.data)}
    return state.put("runs", key, row)


def pretrain_resumable(model, recipe: Recipe, *, steps: int, run_dir: Path, seed: int) -> float:
    """``recipes.pretrain_synthetic`` (``steps`` batches of synthetic portraits, own poly schedule)
    -> seconds spent. A finished pretraining is loaded from ``run_dir`` instead of repeated."""
    resume = (run_dir / CHECKPOINT).exists()
    started = time.perf_counter()
    pretrain_synthetic(model, recipe, steps=steps, num_classes=2, seed=seed, out_dir=run_dir,
                       resume=resume)
    if resume:  # the loop was skipped: load the weights and count the time it took then
        model.load_state_dict(load_checkpoint(run_dir / CHECKPOINT)["model"])
        return sum(r.get("seconds", 0.0) for r in _history(run_dir))
    return time.perf_counter() - started


def _history(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --------------------------------------------------------------------------- stages
def screen(args, state: ResumableState, infos: dict) -> tuple[Recipe, list[dict]]:
    info = infos[args.screen_model]
    rows = [run_one("screen_base", info, BASE, minutes=args.screen_minutes, args=args,
                    state=state)]
    for lever, change in LEVERS.items():
        rows.append(run_one(f"screen_{lever}", info, BASE.with_changes(name=lever, **change),
                            minutes=args.screen_minutes, args=args, state=state))
    base = rows[0]["miou"]
    winners = [r["run"][len("screen_"):] for r in rows[1:] if r["miou"] > base + args.margin]
    combined = {}
    for lever in winners:
        for field_name, value in LEVERS[lever].items():
            if field_name not in combined:  # two levers on one field: the first (better) wins
                combined[field_name] = value
    if len(winners) > 1:
        rows.append(run_one("screen_combined", info,
                            BASE.with_changes(name="+".join(winners), **combined),
                            minutes=args.screen_minutes, args=args, state=state))
    best = max(rows, key=lambda r: r["miou"])
    recipe = Recipe(**{**best["recipe"], "name": "people"})
    if recipe.synthetic_steps:
        recipe = recipe.with_changes(synthetic_steps=-1)
    return recipe, rows


TEACHERS = {"lraspp_large": {"name": "lraspp_mobilenetv3_large", "kwargs": {}},
            "fast_scnn": {"name": "fast_scnn", "kwargs": {}}}


def finals(args, state: ResumableState, infos: dict, recipe: Recipe) -> list[dict]:
    """The issue's starting point (unless ``--no-start``), the recipe on every model, the same
    distilled from saved soft masks (``--soft-teacher``: no teacher run needed, so they come
    first), then distillation: a teacher trained longer (``--teacher-minutes``, at
    ``--teacher-size``) when asked for, else the best final model, into the searched child
    (``--teacher-minutes 0``) or into every student."""
    rows = []
    if not args.no_start:
        for short, info in infos.items():
            rows.append(run_one(f"start_{short}", info, START, minutes=0, args=args, state=state,
                                fixed_epochs=1 if args.quick else START.epochs))
    trained = {}
    for short, info in infos.items():
        trained[short] = run_one(f"final_{short}", info, recipe, minutes=args.minutes,
                                 args=args, state=state)
        rows.append(trained[short])
    if args.soft_teacher:  # the saved soft masks of a model we cannot import (MediaPipe's)
        for short, info in infos.items():
            rows.append(run_one(f"final_{short}_soft", info, recipe, minutes=args.minutes,
                                args=args, state=state, soft_dir=args.soft_teacher))
    if args.teacher_minutes > 0:
        size = args.teacher_size or recipe.image_size
        teacher = run_one(f"teacher_{args.teacher_model}_{size}px", TEACHERS[args.teacher_model],
                          recipe.with_changes(name=f"teacher {size}px", image_size=size),
                          minutes=args.teacher_minutes, args=args, state=state)
        rows.append(teacher)
        students = list(infos)
    else:
        teacher = max((trained[k] for k in ("fast_scnn", "lraspp_small")), key=lambda r: r["miou"])
        students = ["searched_child"]
    for short in students:
        rows.append(run_one(f"final_{short}_distilled", infos[short], recipe,
                            minutes=args.minutes, args=args, state=state,
                            teacher_path=Path(teacher["checkpoint"])))
    return rows


# --------------------------------------------------------------------------- report
def plot_curves(state: ResumableState, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    curves = state.data["pieces"].get("curves", {})
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, prefix, title in ((axes[0], "screen_", "screen: one lever at a time"),
                              (axes[1], ("final_", "start_", "teacher_"), "finals: the recipe")):
        colours: dict[str, str] = {}  # finals: one colour per model, its start point included
        for key, points in sorted(curves.items()):
            if not key.startswith(prefix) or not points:
                continue
            kind, label = key.split("_", 1)
            model = label.removesuffix("_distilled").removesuffix("_soft")
            colour = None if kind == "screen" else colours.setdefault(model, f"C{len(colours)}")
            style = ("s" if kind == "start" else "o--" if label.endswith("_distilled")
                     else "o:" if label.endswith("_soft") else "o-")
            ax.plot([p["minutes"] for p in points], [p["miou"] for p in points], style,
                    ms=3 if kind != "start" else 6, color=colour,
                    label=label if kind == "screen" else f"{kind}: {label}")
        ax.set_xlabel("training minutes (2 cores)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    folders = state.data["recipe"].get("data") or []
    judged = (" + ".join(Path(f).name for f in folders) if len(folders) > 1 else "people")
    axes[0].set_ylabel(f"val mIoU ({judged}, 256 px)")
    fig.tight_layout()
    with atomic_open(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    print(f"wrote {path}")


COLUMNS = [("run", "run", "s"), ("model", "model", "s"), ("epochs", "epochs", "d"),
           ("steps", "steps", "d"), ("minutes", "minutes", ".1f"), ("miou", "mIoU", ".4f"),
           ("busy", "busy", "")]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", default=str(default_people_dir()),
                        help="the people folder (when no --data is given)")
    parser.add_argument("--data", action="append", default=None, metavar="DIR",
                        help="a photo folder to train and judge on (repeat for several: their "
                        "train splits are concatenated, and so are their val splits; default: "
                        "--people alone)")
    parser.add_argument("--no-start", action="store_true",
                        help="skip the issue's starting point (20 epochs at 224 px per model)")
    parser.add_argument("--teacher-model", choices=tuple(TEACHERS), default="lraspp_large")
    parser.add_argument("--teacher-size", type=int, default=None,
                        help="the teacher's training size (default: the recipe's)")
    parser.add_argument("--teacher-minutes", type=float, default=0.0,
                        help="train a teacher this long and distil it into every model (0: the "
                        "best final model is the teacher of the searched child alone)")
    parser.add_argument("--stage", choices=("screen", "all"), default="all",
                        help="screen: the lever screen only; all: then the finals")
    parser.add_argument("--minutes", type=float, default=30.0, help="budget of a final run")
    parser.add_argument("--screen-minutes", type=float, default=5.0)
    parser.add_argument("--screen-model", default="lraspp_small",
                        choices=("fast_scnn", "lraspp_small", "searched_child"))
    parser.add_argument("--eval-minutes", type=float, default=2.5,
                        help="evaluate for the curve about this often")
    parser.add_argument("--margin", type=float, default=0.005,
                        help="a lever joins 'combined' when it beats the base by more than this")
    parser.add_argument("--synthetic-share", type=float, default=0.3,
                        help="share of the minutes the synthetic lever spends on synthetic data")
    parser.add_argument("--distill-weight", type=float, default=0.5)
    parser.add_argument("--soft-teacher", default=None, metavar="DIR",
                        help="also distil every model from saved soft masks (peers.py "
                        "--write-soft-masks DIR): rows final_<model>_soft")
    parser.add_argument("--genotype", help="genotype.json of the searched child")
    parser.add_argument("--calib-steps", type=int, default=6)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: tiny budgets, results in results/recipe-quick")
    parser.add_argument("--fresh", action="store_true", help="discard a saved state")
    parser.add_argument("--verbose", action="store_true", help="progress bars per epoch")
    parser.add_argument("--out", default=None,
                        help="JSON to write (default results/recipe.json, --quick: "
                        "results/recipe-quick.json); the figure goes beside it as .png, the state "
                        "and checkpoints into the folder of the same name")
    args = parser.parse_args(argv)
    if args.quick:
        args.minutes, args.screen_minutes, args.eval_minutes = 0.4, 0.2, 0.2
        args.calib_steps = 2
        args.teacher_minutes = min(args.teacher_minutes, 0.4)
    combined = args.data is not None and args.data != [args.people]
    args.data = [str(folder) for folder in (args.data or [args.people])]
    for folder in args.data:
        if not Path(folder).is_dir():
            raise SystemExit(f"no photo folder at {folder}: pass --data DIR (or --people DIR)")
    stem = "recipe_combined" if combined else "recipe"
    out = Path(args.out or RESULTS / (f"{stem}-quick.json" if args.quick else f"{stem}.json"))
    args.results_dir = str(out.with_suffix(""))
    torch.set_num_threads(args.threads)
    # the settings every piece depends on (a saved state with others is refused); the options
    # added since the first study are kept out while they hold their old meaning, so that study's
    # state still resumes
    new_defaults = {"data": None, "no_start": False,
                    "teacher_model": "lraspp_large", "teacher_size": None, "teacher_minutes": 0.0}
    settings = {k: v for k, v in vars(args).items()
                if k not in ("fresh", "verbose", "stage", "results_dir", "out", "soft_teacher")
                and not (k in new_defaults and v == new_defaults[k])}
    if not combined:
        settings.pop("data", None)
    state = ResumableState(Path(args.results_dir) / "state.json", recipe=settings,
                           fresh=args.fresh)
    infos = model_infos(args)
    started = time.perf_counter()
    recipe, screen_rows = screen(args, state, infos)
    print(f"\nthe recipe: {recipe}\n")
    final_rows = finals(args, state, infos, recipe) if args.stage != "screen" else []
    rows = screen_rows + final_rows
    listed = {r["run"] for r in rows}  # finals finished by an earlier, stopped run: shown too
    rows += [r for key, r in state.data["pieces"].get("runs", {}).items() if key not in listed]
    table = print_table(rows, COLUMNS)
    plot_curves(state, out.with_suffix(".png"))
    write_json(out, {
        "environment": environment(), "settings": settings, "recipe": asdict(recipe),
        "rows": rows, "curves": state.data["pieces"].get("curves", {}),
        "calibration": state.data["pieces"].get("calibration", {}),
        "wall_seconds_this_run": round(time.perf_counter() - started, 1), "table": table})


if __name__ == "__main__":
    main()
