"""Training recipes: every setting of a training run that is not the model, under one name.

A recipe answers "how do I train on my photos?" with numbers measured, not guessed:
``benchmarks/recipe.py`` trains Fast-SCNN, LR-ASPP-Small and a searched child on real people photos
under a fixed budget of minutes and compares the levers one at a time (schedule, augmentation
strength, crop size, synthetic-to-real pretraining, OHEM or boundary loss, distillation). The
winner is ``RECIPES["people"]``; ``segnas train`` picks it for photo folders of people
(``recipe_for``), and ``--recipe`` names another.

* ``"classic"``: the package's first defaults (10 epochs, lr 0.02, the default augmentation),
  right for the synthetic data, whose endless fresh images need no regularisation.
* ``"people"``: for real photos of people (a few hundred to about a thousand images): see its
  comment for what each setting bought in ``benchmarks/recipe.py``. Its length is a budget of
  batches, so it trains for about 30-40 minutes on 2 cores whatever the folder's size; pass
  ``--epochs`` for a shorter run (the first minutes bring most of the gain: see the README).

``segnas train`` runs a recipe through ``train_with_recipe``; the recipe's ``image_size`` is its
default ``--image-size``. Synthetic-to-real pretraining (``synthetic_steps``) first trains on
generated portraits (``data.SyntheticPortraits``, ``pretrain_synthetic``), then on the photos;
distillation needs a teacher checkpoint (``segnas train --teacher``) and is not part of a default
recipe, since a default cannot assume that a larger trained model exists.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

from torch import nn
from torch.utils.data import Dataset

from segnas_lite.errors import SegnasError
from segnas_lite.data import PairedAugment, open_dataset
from segnas_lite.runio import guard_run_dir
from segnas_lite.train.engine import CHECKPOINT, TrainConfig, TrainResult, train


class RecipeError(SegnasError, ValueError):
    """A recipe that cannot train this run (synthetic pretraining of a run that is not 2-class)."""


class UnknownRecipeError(RecipeError):
    """A recipe name that is not in :data:`RECIPES`."""


@dataclass(frozen=True)
class Recipe:
    """How to train: data size, augmentation, schedule, loss, pretraining. No model in here."""

    name: str
    image_size: int = 256         # side the photos are resized to (training and validation)
    crop: int | None = None       # train on random crop x crop windows (PairedAugment.crop)
    augment: str = "default"      # PairedAugment.preset strength: light, default, strong
    epochs: int = 10
    batch_size: int = 8
    optimizer: str = "sgd"
    lr: float = 0.02
    schedule: str = "poly"
    warmup_steps: int = 0
    loss: str = "ce"              # engine.pixel_loss: ce, ohem, boundary
    synthetic_steps: int = 0      # steps on synthetic portraits before the photos (0 = none;
                                  # benchmarks/recipe.py's -1: a share of its minutes)
    steps: int | None = None      # a budget of batches: the epochs follow the training set's
                                  # size (epochs_for); None: ``epochs`` whatever the size

    def augmentation(self) -> PairedAugment:
        return PairedAugment.preset(self.augment, crop=self.crop)

    def epochs_for(self, train_size: int, *, steps_per_epoch: int | None = None) -> int:
        """Epochs for a training set of ``train_size`` images: ``epochs``, or, for a recipe with a
        ``steps`` budget, as many epochs as make about ``steps`` batches (at least one). So one
        recipe takes about the same minutes on 200 photos as on 1,000: more photos, fewer passes.
        ``steps_per_epoch``: the cap on batches per epoch, if one is set."""
        if self.steps is None:
            return self.epochs
        batches = max(1, math.ceil(train_size / self.batch_size))
        if steps_per_epoch is not None:
            batches = min(batches, steps_per_epoch)
        return max(1, round(self.steps / batches))

    def train_config(self, *, seed: int = 0, quiet: bool = False, train_size: int | None = None,
                     **changes) -> TrainConfig:
        """The engine's ``TrainConfig`` for this recipe; ``train_size``: the training set's size,
        which sets the epochs of a recipe with a ``steps`` budget (``epochs_for``); ``changes``
        set other fields (``steps_per_epoch``, ``distill_weight``, ...)."""
        epochs = self.epochs if train_size is None else self.epochs_for(
            train_size, steps_per_epoch=changes.get("steps_per_epoch"))
        fields = dict(epochs=epochs, batch_size=self.batch_size, optimizer=self.optimizer,
                      lr=self.lr, schedule=self.schedule, warmup_steps=self.warmup_steps,
                      loss=self.loss, seed=seed, quiet=quiet)
        return TrainConfig(**{**fields, **changes})

    def with_changes(self, **changes) -> "Recipe":
        return replace(self, **changes)


RECIPES: dict[str, Recipe] = {
    "classic": Recipe("classic"),
    # people: benchmarks/recipe.py's screen (LR-ASPP-Small, 5 minutes per run, people-val mIoU at
    # 256 px): base (lr 0.05, poly, cross-entropy, default augmentation) 0.790; light augmentation
    # 0.805, the best single lever, and better than light + cosine warm-up + synthetic pretraining
    # together (0.794); crop 160, strong augmentation, boundary loss 0.778-0.787; OHEM 0.634.
    # 210 epochs of the 184 people-train photos (4830 steps of 8 images at 256 px) fit in 30
    # minutes for LR-ASPP-Small on 2 cores (0.34-0.38 s per step measured by the benchmark).
    # The 30-minute finals: Fast-SCNN 0.852 (still rising), searched child 0.842, LR-ASPP-Small
    # 0.825 (flat after about 12 minutes).
    # Retuned for about 1,000 photos (people + ccp_people, 824 train, the same screen on the
    # combined val split): light augmentation wins again, alone (0.861 against a base of 0.832;
    # crop 160, strong, OHEM, boundary, cosine warm-up, synthetic pretraining 0.71-0.84), so only
    # the length changes: a budget of 4830 batches (210 epochs of 184 photos, 47 of 824), about
    # 30-40 minutes on 2 cores whatever the folder's size. `--epochs` still fixes the epochs.
    "people": Recipe("people", image_size=256, augment="light", epochs=210, lr=0.05,
                     schedule="poly", loss="ce", steps=4830),
}


def get_recipe(name: str) -> Recipe:
    if name not in RECIPES:
        raise UnknownRecipeError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}")
    return RECIPES[name]


PEOPLE_WORDS = ("person", "people", "human", "portrait", "selfie", "foreground")


def is_people_like(source: str, class_names: tuple[str, ...] | None, num_classes: int) -> bool:
    """A folder of real photos with a person-versus-background mask: two classes, and the people
    layout (``Training_Images/`` + ``Ground_Truth/``) or a class name that says person."""
    if source in ("synthetic", "synthetic-scenes") or num_classes != 2:
        return False
    from segnas_lite.data import find_layout
    try:
        if find_layout(source).kind == "people":
            return True
    except Exception:  # not a folder layout: let the caller's own checks speak
        return False
    names = " ".join(class_names or ()).lower()
    return any(word in names for word in PEOPLE_WORDS)


def recipe_for(source: str, *, class_names: tuple[str, ...] | None = None,
               num_classes: int = 2) -> Recipe:
    """The default recipe of a data source: ``"people"`` for people-like photo folders
    (``is_people_like``), ``"classic"`` otherwise."""
    return RECIPES["people" if is_people_like(source, class_names, num_classes) else "classic"]


def choose_recipe(name: str, *, source: str, class_names: tuple[str, ...] | None = None,
                  num_classes: int | None = None) -> Recipe:
    """The recipe called ``name`` in :data:`RECIPES`, or for ``"auto"`` the one of the data
    (``recipe_for``: people for a people-like photo folder, classic otherwise)."""
    if name == "auto":
        return recipe_for(source, class_names=class_names, num_classes=num_classes or 2)
    return get_recipe(name)


# --------------------------------------------------------------------------- synthetic-to-real
def synthetic_set(recipe: Recipe, *, steps: int, seed: int) -> Dataset:
    """``steps`` batches of synthetic portraits at the recipe's size and augmentation."""
    return open_dataset("synthetic", image_size=recipe.image_size, split="train", seed=seed,
                        augment=recipe.augmentation(), length=max(1, steps) * recipe.batch_size)


def pretrain_synthetic(model: nn.Module, recipe: Recipe, *, steps: int, num_classes: int,
                       seed: int = 0, quiet: bool = True, out_dir=None,
                       resume: bool = False, **devices) -> TrainResult:
    """Synthetic-to-real pretraining: train ``model`` on ``steps`` batches of generated portraits
    (``data.SyntheticPortraits``, 2 classes: background, person) in one epoch with the recipe's
    optimiser and its own schedule, before the photos. ``out_dir``/``resume``: as ``engine.train``;
    ``devices``: ``TrainConfig``'s ``device``, ``amp`` and ``sync_bn``."""
    if num_classes != 2:
        raise RecipeError(f"recipe {recipe.name!r} pretrains on 2-class synthetic portraits, but "
                          f"this run has {num_classes} classes: choose a recipe without "
                          "synthetic_steps")
    config = recipe.train_config(seed=seed, quiet=quiet, epochs=1, steps_per_epoch=steps, **devices)
    return train(model, synthetic_set(recipe, steps=steps, seed=seed), config=config,
                 num_classes=2, out_dir=out_dir, resume=resume)


def train_with_recipe(model: nn.Module, train_set: Dataset, val_set: Dataset | None, recipe: Recipe,
                      *, config: TrainConfig, num_classes: int, out_dir=None, resume: bool = False,
                      overwrite: bool = False, **train_kwargs) -> TrainResult:
    """``engine.train`` with ``config`` (``recipe.train_config``), after the recipe's synthetic
    pretraining when it has ``synthetic_steps`` (not on resume: the checkpoint holds the weights).
    ``train_kwargs``: the rest of ``engine.train``'s keywords (model_info, teacher, ...)."""
    if recipe.synthetic_steps < 0:
        raise RecipeError(f"recipe {recipe.name!r} has synthetic_steps {recipe.synthetic_steps} "
                          "(benchmarks/recipe.py's share of a time budget): give a number of steps")
    if recipe.synthetic_steps and not resume:
        if out_dir is not None:  # refuse to replace a run before minutes of pretraining, not after
            guard_run_dir(out_dir, [CHECKPOINT], resume=False, overwrite=overwrite)
        pretrain_synthetic(model, recipe, steps=recipe.synthetic_steps, num_classes=num_classes,
                           seed=config.seed, quiet=config.quiet, device=config.device,
                           amp=config.amp, sync_bn=config.sync_bn)
    return train(model, train_set, val_set, config=config, num_classes=num_classes,
                 out_dir=out_dir, resume=resume, overwrite=overwrite, **train_kwargs)
