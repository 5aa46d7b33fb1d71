"""What several commands share: checked number types and option groups.

A number type parses a flag's text or raises ``argparse.ArgumentTypeError``, which argparse prints
with the option's name and exit status 2, never a traceback. An option group adds the same flags,
with the same help, to every command that takes them.
"""
from __future__ import annotations

import argparse

from segnas_lite.errors import SegnasError


class CLIError(SegnasError):
    """A problem with the command line (bad path, conflicting options)."""


# --------------------------------------------------------------------------- numbers, checked
def _number(kind, text: str, *, low=None, high=None, low_open=False, what: str):
    """Parse ``text`` as ``kind`` inside [low, high] (or (low, ...) with ``low_open``)."""
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}") from None
    if value != value or (low is not None and (value <= low if low_open else value < low)) \
            or (high is not None and value > high):
        raise argparse.ArgumentTypeError(f"must be {what}, got {text}")
    return value


def positive_int(text: str) -> int:
    return _number(int, text, low=1, what="an integer >= 1")


def nonnegative_int(text: str) -> int:
    return _number(int, text, low=0, what="an integer >= 0")


def image_side(text: str) -> int:
    return _number(int, text, low=16, high=4096, what="a side in pixels, 16..4096")


def positive_float(text: str) -> float:
    return _number(float, text, low=0.0, low_open=True, high=float("inf"), what="a number > 0")


def nonnegative_float(text: str) -> float:
    return _number(float, text, low=0.0, high=float("inf"), what="a number >= 0")


def fraction(text: str) -> float:
    return _number(float, text, low=0.0, high=1.0, what="a number in 0..1")


def class_count(text: str) -> int:
    return _number(int, text, low=1, high=255, what="a number of classes, 1..255")


def mask_value(text: str) -> int:
    return _number(int, text, low=0, high=65535, what="a raw mask value, 0..65535")


def momentum(text: str) -> float:
    """A smoothing momentum in [0, 1)."""
    value = fraction(text)
    if value >= 1.0:
        raise argparse.ArgumentTypeError(f"must be a momentum in [0, 1), got {text}")
    return value


def subsample_step(text: str) -> int | None:
    """A guided-filter step >= 1, or ``auto`` (None: ``refine.fast_step`` chooses)."""
    return None if text == "auto" else positive_int(text)


def threshold(text: str) -> float | None:
    """A probability threshold in (0, 1), or ``soft`` (refine the probability itself)."""
    if text == "soft":
        return None
    value = fraction(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1) or 'soft', got {text}")
    return value


def _mapping(text: str) -> dict[int, int]:
    from segnas_lite.data import DatasetError, parse_mask_mapping
    try:
        return parse_mask_mapping(text)
    except DatasetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _names(text: str) -> tuple[str, ...]:
    from segnas_lite.data import DatasetError, parse_class_names
    try:
        return parse_class_names(text)
    except DatasetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


# --------------------------------------------------------------------------- data
CLASS_SET_FLAGS = {"num_classes": "--num-classes", "ignore_index": "--ignore-index",
                   "mask_mapping": "--mask-mapping", "unmapped": "--unmapped",
                   "class_names": "--class-names"}


def add_network_options(p: argparse.ArgumentParser) -> None:
    """The photos and the network that reads them (``predict``, ``replace-background``): IMAGE...,
    ``--checkpoint`` (PyTorch, from ``segnas train``) or ``--model`` (OpenVINO IR, from ``segnas
    export``), and the side photos are resized to for a checkpoint."""
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--checkpoint", help="DIR/checkpoint.pt from `segnas train`")
    p.add_argument("--model", help="OpenVINO IR (model.xml) from `segnas export`")
    p.add_argument("--image-size", type=image_side, default=None,
                   help="with --checkpoint: the square side each photo is resized to for the "
                   "network (default: the training run's, else the photo's own size); an IR uses "
                   "its own input size")


def add_data_options(p: argparse.ArgumentParser, *, image_size: int | None = 256,
                     data: str | None = "synthetic", source: bool = True, val_data: bool = False,
                     unset: str = "the training run's") -> None:
    """``--data`` and ``--image-size`` (when ``source``), then the class set of a folder. A default
    of None is decided later; the help says by whom (``unset``)."""
    default = (lambda value: f"; default: {unset}" if value is None else "; default %(default)s")
    if source:
        p.add_argument("--data", action="append", default=None, metavar="SOURCE",
                       help="'synthetic' (portraits), 'synthetic-scenes' or a dataset folder "
                       "(split folders train/ + trainannot/ or images/<split>/ + masks/<split>/, "
                       "images/ + masks/, people, Pascal VOC, Cityscapes); repeat it to read "
                       "several folders as one (each keeps its own split; their class sets must "
                       "agree)" + ("; default: " + (data or unset)))
        p.add_argument("--split-seed", type=nonnegative_int, default=None,
                       help="seed of a pool folder's random train/val cut (default: --seed); fix "
                       "it to retrain with other seeds on the same validation images")
        p.add_argument("--image-size", type=image_side, default=image_size,
                       help="square side the images are resized to (pixels)" + default(image_size))
    if val_data:
        p.add_argument("--val-data", metavar="PATH", default=None,
                       help="a separate validation folder (its val split if it has one, else all "
                       "of it); --data is then used whole for training")
    group = p.add_argument_group("class set of a folder (saved with the run)")
    group.add_argument("--num-classes", type=class_count, default=None,
                       help="number of classes (default: the layout's own; 2 for images/ + masks/)")
    group.add_argument("--ignore-index", type=mask_value, default=None,
                       help="raw mask value meaning 'no label' (default 255; SegNet's CamVid: 11)")
    group.add_argument("--mask-mapping", type=_mapping, default=None, metavar="RAW:CLASS,...",
                       help="raw mask value -> class, e.g. '0:0,255:1'; RAW:ignore drops a value")
    group.add_argument("--unmapped", choices=("error", "ignore"), default=None,
                       help="a mask value outside the class set: stop naming the file (error, the "
                       "default) or carry no loss there (ignore)")
    group.add_argument("--class-names", type=_names, default=None, metavar="A,B,...",
                       help="one name per class, comma-separated (shown in per-class IoU)")


def data_sources(args, *, default: str | None) -> str | list[str] | None:
    """``--data`` as given: one source (a string), several (a list), or ``default`` when unset."""
    given = args.data or ([default] if default else [])
    if not given:
        return None
    return given[0] if len(given) == 1 else list(given)


def data_options(args, saved: dict | None = None) -> dict:
    """The class set from the flags, unset ones from a saved run (``saved``): open_dataset kwargs."""
    saved = dict(saved or {})
    out = {key: getattr(args, key) if getattr(args, key) is not None else saved.get(key)
           for key in CLASS_SET_FLAGS}
    if out["mask_mapping"] is not None:
        out["mask_mapping"] = {int(k): int(v) for k, v in out["mask_mapping"].items()}
    if out["class_names"] is not None:
        out["class_names"] = tuple(out["class_names"])
    if out["ignore_index"] is None:
        out.pop("ignore_index")
    if out["unmapped"] is None:
        out.pop("unmapped")
    return out


def class_set_flags(args) -> list[str]:
    """The class-set flags given on the command line (``splits.refuse_class_set_for_synthetic``)."""
    return [flag for key, flag in CLASS_SET_FLAGS.items() if getattr(args, key) is not None]


# --------------------------------------------------------------------------- run switches
def add_seed_option(p: argparse.ArgumentParser, *, what: str) -> None:
    p.add_argument("--seed", type=nonnegative_int, default=0,
                   help=f"random seed of {what}; default %(default)s")


def add_quiet_option(p: argparse.ArgumentParser, *, what: str = "no progress bars") -> None:
    p.add_argument("--quiet", action="store_true", help=what)


def add_overwrite_option(p: argparse.ArgumentParser, *, what: str) -> None:
    p.add_argument("--overwrite", action="store_true", help=f"replace {what}")


# --------------------------------------------------------------------------- devices, torchrun
def device_spec(text: str) -> str:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (whether the machine has it: ``resolve_device``)."""
    spec = text.strip().lower()
    kind, _, index = spec.partition(":")
    if spec in ("auto", "cpu", "cuda") or (kind == "cuda" and index.isdigit()):
        return spec
    raise argparse.ArgumentTypeError(f"must be auto, cpu, cuda or cuda:N, got {text!r}")


def add_device_options(p: argparse.ArgumentParser, *, training: bool = False) -> None:
    """``--device``; with ``training`` also ``--amp`` and ``--sync-bn`` (train/distributed.py)."""
    group = p.add_argument_group("device and processes (several: start with torchrun)")
    group.add_argument("--device", type=device_spec, default="auto",
                       help="auto (CUDA when available, else the CPU), cpu, cuda or cuda:N; under "
                       "torchrun each process takes the GPU of its LOCAL_RANK; default %(default)s")
    if training:
        group.add_argument("--amp", choices=("bf16", "fp16"), default=None,
                           help="mixed precision (autocast): bf16 (CUDA, or a CPU with AMX / "
                           "AVX-512 BF16) or fp16 (CUDA only); default: off (f32)")
        group.add_argument("--sync-bn", action="store_true",
                           help="several processes on CUDA: BatchNorm statistics over the global "
                           "batch (SyncBatchNorm)")


def join_processes(args):
    """This process's ``distributed.Context`` (under torchrun: joins the process group). Only
    ``ctx.is_main`` (rank 0) prints."""
    from segnas_lite.train import distributed
    return distributed.init(args.device)


# --------------------------------------------------------------------------- models
def add_teacher_options(p: argparse.ArgumentParser, *, into: str) -> None:
    """``--teacher CHECKPOINT`` and ``--distill-weight W`` (distill.py; Hinton et al., 2015)."""
    p.add_argument("--teacher", default=None, metavar="CHECKPOINT",
                   help=f"a `segnas train` checkpoint whose soft masks are distilled into {into}")
    p.add_argument("--distill-weight", type=nonnegative_float, default=None,
                   help="weight of the distillation term (default 0.5 with --teacher)")


def add_model_option(p: argparse.ArgumentParser, *, help: str, **kwargs) -> None:
    """``--model NAME``, one of ``segnas_lite.zoo.MODELS`` (the list ``segnas models`` prints)."""
    from segnas_lite.zoo import available_models
    names = available_models()
    p.add_argument("--model", choices=names, metavar="NAME",
                   help=f"{help}; one of: {', '.join(names)}", **kwargs)


def model_info(args) -> dict:
    """What to build (``zoo.build_from_info``): the child of ``--genotype`` when given, else
    ``--model``."""
    if args.genotype:
        from segnas_lite.nas.space import Genotype
        genotype = Genotype.load(args.genotype)
        return {"name": "nas_child", "kwargs": {"genotype": genotype.to_json()}}
    if args.model == "nas_child":
        raise CLIError("nas_child is the child of a searched genotype: pass --genotype FILE")
    return {"name": args.model, "kwargs": {}}


# --------------------------------------------------------------------------- super-net, strategy
SUPERNET_FLAGS = ("warmup_epochs", "warmup_sampling", "sandwich", "inplace_distill",
                  "bn_recalibration", "strategy", "evaluations")


def add_supernet_options(p: argparse.ArgumentParser) -> None:
    """How the super-net trains and how it is searched (``SearchConfig``; ../shared/DESIGN.md,
    "Judging a search"). Unset flags keep ``SearchConfig``'s defaults (or ``--quick``'s)."""
    from segnas_lite.nas.config import SANDWICH, STRATEGIES, WARMUP_SAMPLING, SearchConfig
    group = p.add_argument_group("super-net training and search strategy")
    group.add_argument("--warmup-epochs", type=nonnegative_int, default=None, metavar="N",
                       help=f"epochs that train the super-net's weights before any search; "
                       f"default {SearchConfig.warmup_epochs}")
    group.add_argument("--warmup-sampling", choices=WARMUP_SAMPLING, default=None,
                       help="warm-up paths: fair (default: uniform, every op trained equally), "
                       "strict_fair (FairNAS: every op of a layer once per cycle) or constrained "
                       "(uniform under the budget, as the seed)")
    group.add_argument("--sandwich", type=nonnegative_int, default=None, metavar="N",
                       help="sandwich rule: each warm-up step trains the slowest, the fastest and "
                       f"N random subnets, gradients summed; 0: one path per step; default "
                       f"{SANDWICH} (0 with --warmup-sampling constrained or a --teacher)")
    group.add_argument("--inplace-distill", action=argparse.BooleanOptionalAction, default=None,
                       help="with a sandwich: the slowest subnet's soft masks teach the others; "
                       "default: on whenever there is a sandwich")
    group.add_argument("--bn-recalibration", type=nonnegative_int, default=None, metavar="IMAGES",
                       help="re-estimate BatchNorm statistics on this many training images before "
                       f"the super-net scores a subnet (0: the shared statistics); default "
                       f"{SearchConfig.bn_recalibration}")
    group.add_argument("--strategy", choices=STRATEGIES, default=None,
                       help="gradient (default: ProxylessNAS alpha steps), or evolution / random "
                       "on the super-net's scores after the warm-up (no alpha steps)")
    default, quick = SearchConfig().evolution, SearchConfig.quick().evolution
    group.add_argument("--population", type=positive_int, default=None, metavar="N",
                       help=f"evolution: subnets per generation; default {default.population} "
                       f"(--quick: {quick.population})")
    group.add_argument("--generations", type=positive_int, default=None, metavar="N",
                       help=f"evolution: generations; default {default.generations} (--quick: "
                       f"{quick.generations})")
    group.add_argument("--evaluations", type=positive_int, default=None, metavar="N",
                       help="random: subnets scored (default: as many as evolution scores at most)")


def with_supernet_options(config, args):
    """``config`` (a ``SearchConfig``) with the super-net and strategy flags that were given."""
    import dataclasses
    given = {key: getattr(args, key) for key in SUPERNET_FLAGS if getattr(args, key) is not None}
    for key in ("sandwich", "inplace_distill"):  # not given: resolved again with the other flags
        given.setdefault(key, None)  # (e.g. --warmup-sampling constrained: no sandwich)
    evolution = {key: getattr(args, key) for key in ("population", "generations")
                 if getattr(args, key) is not None}
    if evolution:
        given["evolution"] = dataclasses.replace(config.evolution, **evolution)
    return dataclasses.replace(config, **given)


# --------------------------------------------------------------------------- deployment
def add_latency_target_options(p: argparse.ArgumentParser, *, size_help: str,
                               size_flag: str = "--latency-size", size_default=None) -> None:
    """Where the network will run: backend, precision and image side."""
    from segnas_lite.deploy.target import BACKENDS, PRECISIONS
    p.add_argument("--backend", choices=BACKENDS, default="openvino",
                   help="where latency is measured: the deployment target; default %(default)s")
    p.add_argument("--precision", choices=PRECISIONS, default="f32",
                   help="OpenVINO inference precision (torch runs f32); 'default' lets the CPU "
                   "plugin choose (bf16 where the CPU supports it); default %(default)s")
    p.add_argument(size_flag, type=image_side, default=size_default, help=size_help)


# --------------------------------------------------------------------------- cut-outs
def add_refine_options(p: argparse.ArgumentParser, *, background: str | None) -> None:
    """The background and the edge refinement of ``replace-background`` and ``video``."""
    from segnas_lite.portrait.refine import REFINE_METHODS, RefineConfig
    p.add_argument("--background", default=background,
                   help="an image file, a colour ('#00b140', 'green', '0,177,64') or 'blur[:R]' "
                   "(the photo blurred); default: " + (background or "none: a coloured overlay "
                                                       "of the mask"))
    p.add_argument("--refine", choices=REFINE_METHODS, default="guided",
                   help="edge refinement: guided filter on the image, a plain feather, or none; "
                   "default %(default)s")
    p.add_argument("--threshold", type=threshold, default=0.5,
                   help="binarise the probability at this value before refining, or 'soft' to "
                   "refine the probability itself; default %(default)s")
    p.add_argument("--radius", type=nonnegative_int, default=None,
                   help="refinement radius in pixels (default: one network output pixel, "
                   "8 x image side / network input side)")
    p.add_argument("--eps", type=positive_float, default=RefineConfig.eps,
                   help="guided filter edge threshold (image variance); default %(default)s")
    p.add_argument("--subsample", type=subsample_step, default=RefineConfig.subsample,
                   metavar="STEP|auto",
                   help="the fast guided filter's step: its linear model is fitted on an image "
                   "STEP times smaller; 1 = the full filter; default auto (an eighth of the "
                   "radius)")
    p.add_argument("--foreground", type=nonnegative_int, default=1,
                   help="the class that is kept (person); default %(default)s")


def refine_config(args):
    """The ``RefineConfig`` of the command line (no --radius: ``refine.default_radius``, one
    network output pixel)."""
    from segnas_lite.portrait.refine import RefineConfig
    return RefineConfig(method=args.refine, threshold=args.threshold, radius=args.radius,
                        eps=args.eps, subsample=args.subsample)
