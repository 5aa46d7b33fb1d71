"""What a search records: every sampled subnet, every weight and alpha step, one summary per epoch.

``History`` is saved as ``history.json`` next to the genotype; the notebooks and widgets read every
figure from it (alpha evolution, E[LAT] per step, rejection rates, sampled latencies), so a finished
search can be replayed without running anything. ``SearchResult`` is what a search returns (and
``summary.json`` holds).
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from segnas_lite.runio import atomic_write_text
from segnas_lite.nas.space import Genotype, pad_rows


@dataclass
class Sample:
    """One sampled subnet: where it was drawn, its latency (ms) and whether it was accepted.

    Under the hard constraint, accepted means it fit the budget. The fair warm-up does not check
    the budget: its samples are all accepted, with the table's predicted latency recorded."""

    phase: str        # "warmup", "weights" (interleaved weight step) or "alpha"
    step: int         # index of the step within its kind (weight steps or alpha steps)
    epoch: int
    ops: list[str]
    latency_ms: float
    accepted: bool


@dataclass
class WeightStep:
    """One weight batch (warm-up or interleaved): its loss and every try of the path sampling.

    A sandwich step (``warmup.py``) trains several paths: each is one accepted sample, in training
    order (slowest, fastest, then the random ones), ``path_losses`` holds their losses and ``loss``
    their mean."""

    step: int
    epoch: int
    phase: str
    loss: float
    lr: float
    samples: list[Sample]
    path_losses: list[float] | None = None

    @property
    def rejections(self) -> int:
        return sum(not s.accepted for s in self.samples)


@dataclass
class AlphaStep:
    """One architecture update. ``alphas``/``probs`` are AFTER the step; the losses and ``E[LAT]``
    are those of the step's forward pass; ``pairs`` holds the two sampled ops per layer ("two")."""

    step: int
    epoch: int
    alphas: list[list[float]]
    probs: list[list[float]]
    samples: list[Sample]
    ce: float
    loss: float
    expected_latency_ms: float
    rejection_rate: float
    pairs: list[list[str]] | None = None


def normalized_entropy(probs) -> list[float]:
    """Per layer, the entropy of p divided by its maximum log K: 1 = uniform, 0 = one op certain.

    A search that learns something lowers it; one that stays near 1 has not decided anything."""
    out = []
    for p in probs:
        p = np.asarray(p, dtype=np.float64)
        k = len(p)
        nz = p[p > 0]
        out.append(float(-(nz * np.log(nz)).sum() / np.log(k)) if k > 1 else 0.0)
    return out


def argmax_changes(before, after) -> int:
    """How many layers have a different most probable op in ``after`` than in ``before``."""
    return sum(int(np.argmax(a)) != int(np.argmax(b)) for a, b in zip(after, before))


@dataclass
class EpochSummary:
    epoch: int                 # 1-based
    phase: str                 # "warmup" or "search"
    weight_steps: int
    alpha_steps: int
    mean_weight_loss: float | None
    mean_alpha_loss: float | None
    samples: int
    rejected: int
    rejection_rate: float
    expected_latency_ms: float
    seconds: float
    alpha_entropy: float | None = None  # mean normalized entropy of p at the epoch's end (1 = uniform)
    argmax_changes: int | None = None   # layers whose most probable op changed during the epoch
    max_prob: float | None = None       # mean over layers of the largest p at the epoch's end

    @classmethod
    def of(cls, epoch: int, phase: str, weight_steps: list[WeightStep],
           alpha_steps: list[AlphaStep], expected_latency_ms: float,
           seconds: float, probs_before=None, probs_after=None) -> "EpochSummary":
        """Sum up the steps of epoch ``epoch`` (0-based): mean losses, tries and rejections; with
        the probabilities at the epoch's start and end, how decided and how stable alpha is."""
        tries = [s for record in (*weight_steps, *alpha_steps) for s in record.samples]
        rejected = sum(not s.accepted for s in tries)

        def mean_loss(records: list) -> float | None:
            return float(np.mean([r.loss for r in records])) if records else None

        stats = {}
        if probs_after is not None:
            stats = {"alpha_entropy": float(np.mean(normalized_entropy(probs_after))),
                     "max_prob": float(np.mean([np.max(p) for p in probs_after]))}
            if probs_before is not None:
                stats["argmax_changes"] = argmax_changes(probs_before, probs_after)
        return cls(epoch + 1, phase, len(weight_steps), len(alpha_steps), mean_loss(weight_steps),
                   mean_loss(alpha_steps), len(tries), rejected, rejected / max(len(tries), 1),
                   expected_latency_ms, round(seconds, 3), **stats)


EPOCH_HEADER = (f"{'epoch':>7}  {'phase':<6}  {'w steps':>7}  {'w loss':>6}  {'α steps':>7}  "
                f"{'α loss':>6}  {'rejected':>9}  {'E[LAT] ms':>9}  {'entropy':>7}  {'max p':>5}  "
                f"{'moved':>5}  {'seconds':>7}")
EPOCH_LEGEND = ("w = weights, α = architecture (alpha); "
                "rejected = sampled subnets over the budget;\n"
                "entropy = of p, over log K (1 = uniform); moved = layers whose argmax changed;\n"
                "- = alpha did not move (it is frozen in the warm-up)")


def _epoch_cells(epoch: EpochSummary) -> str:
    """One epoch's columns after its number, without the time. Alpha columns read "-" in an epoch
    without alpha steps: alpha did not move, so they would only repeat the previous values."""
    def number(value, spec: str, width: int) -> str:
        return f"{'-' if value is None else format(value, spec):>{width}}"

    moved = epoch.alpha_steps > 0
    return "  ".join([
        f"{epoch.phase:<6}", f"{epoch.weight_steps:>7}",
        number(epoch.mean_weight_loss if epoch.weight_steps else None, ".4f", 6),
        f"{epoch.alpha_steps:>7}", number(epoch.mean_alpha_loss if moved else None, ".4f", 6),
        f"{f'{epoch.rejected}/{epoch.samples}':>9}",
        number(epoch.expected_latency_ms if moved else None, ".3f", 9),
        number(epoch.alpha_entropy if moved else None, ".3f", 7),
        number(epoch.max_prob if moved else None, ".2f", 5),
        number(epoch.argmax_changes if moved else None, "d", 5)])


def format_epochs(epochs: list[EpochSummary]) -> str:
    """One line per epoch: steps and mean loss of each kind, the rejected share of the sampled
    subnets and, once alpha moves, ``E[LAT]``, the entropy of p (1 = uniform), the mean largest p
    and how many layers changed their argmax in the epoch. The warm-up trains weights only, so its
    lines show the weight loss falling and "-" where alpha would repeat its initial values; a run
    of consecutive epochs whose lines would be identical (apart from number and time) is one line,
    ``epochs a-b``, with their total time."""
    groups: list[list] = []  # [first epoch, last epoch, cells, seconds]
    for epoch in epochs:
        cells = _epoch_cells(epoch)
        if groups and groups[-1][2] == cells and groups[-1][1] == epoch.epoch - 1:
            groups[-1][1] = epoch.epoch
            groups[-1][3] += epoch.seconds
        else:
            groups.append([epoch.epoch, epoch.epoch, cells, epoch.seconds])
    lines = [EPOCH_HEADER]
    for first, last, cells, seconds in groups:
        label = str(first) if first == last else f"{first}-{last}"
        lines.append(f"{label:>7}  {cells}  {seconds:>7.1f}")
    return "\n".join(lines + [EPOCH_LEGEND])


@dataclass
class History:
    """Everything a notebook needs to replay a search (saved as ``history.json``)."""

    space: str
    op_names: list[list[str]]
    budget_ms: float
    fixed_ms: float
    table_ms: list[list[float]]
    table_meta: dict
    config: dict
    alpha_init: list[list[float]]
    weight_steps: list[WeightStep] = field(default_factory=list)
    alpha_steps: list[AlphaStep] = field(default_factory=list)
    epochs: list[EpochSummary] = field(default_factory=list)
    # evolution / random search (strategies.py): "strategy", "evaluations", "rejections", "best"
    # and "generations" (per generation: best, mean, rejected, population as [ops, fitness, ms])
    strategy: dict | None = None

    # ---- JSON
    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "History":
        data = json.loads(text)

        def samples(items: list[dict]) -> list[Sample]:
            return [Sample(**s) for s in items]

        data["weight_steps"] = [WeightStep(**{**w, "samples": samples(w["samples"])})
                                for w in data["weight_steps"]]
        data["alpha_steps"] = [AlphaStep(**{**a, "samples": samples(a["samples"])})
                               for a in data["alpha_steps"]]
        data["epochs"] = [EpochSummary(**e) for e in data["epochs"]]
        return cls(**data)

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | os.PathLike) -> "History":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    # ---- helpers for notebooks and widgets
    def samples(self, phase: str | None = None) -> list[Sample]:
        """Every try, in order (weight steps first, then alpha steps), optionally of one phase."""
        every = [s for w in self.weight_steps for s in w.samples]
        every += [s for a in self.alpha_steps for s in a.samples]
        return [s for s in every if phase is None or s.phase == phase]

    def alpha_matrix(self, step: int | None = -1) -> np.ndarray:
        """``(layers, max_ops)`` probabilities after alpha step ``step`` (NaN where a layer has fewer
        ops). ``step=None`` gives the initial probabilities."""
        if step is None:
            rows = [torch.softmax(torch.tensor(a), 0).tolist() for a in self.alpha_init]
        else:
            rows = self.alpha_steps[step].probs
        return pad_rows(rows)

    def rejection_rates(self, phase: str = "alpha") -> list[float]:
        """Per step, the share of rejected tries: alpha steps (``"alpha"``), or weight steps of
        ``"warmup"`` / ``"weights"``."""
        if phase == "alpha":
            return [a.rejection_rate for a in self.alpha_steps]
        return [w.rejections / len(w.samples) for w in self.weight_steps if w.phase == phase]

    def sampled_latencies(self, accepted: bool | None = None, phase: str | None = None) -> list[float]:
        """Latencies of all tries, or only accepted (``True``) / rejected (``False``) ones."""
        return [s.latency_ms for s in self.samples(phase)
                if accepted is None or s.accepted == accepted]

    def derived_genotype(self, step: int = -1) -> Genotype:
        """The argmax genotype after alpha step ``step``."""
        probs = self.alpha_steps[step].probs
        return Genotype(self.space, tuple(names[int(np.argmax(p))]
                                          for names, p in zip(self.op_names, probs)))

    def expected_latency_curve(self) -> list[float]:
        """``E[LAT]`` (ms) at each alpha step."""
        return [a.expected_latency_ms for a in self.alpha_steps]

    def epoch_table(self) -> str:
        """The epochs as a table (notebook 06 prints it; ``format_epochs``)."""
        return format_epochs(self.epochs)

    def _probs_over_steps(self) -> list[list[list[float]]]:
        initial = [torch.softmax(torch.tensor(a), 0).tolist() for a in self.alpha_init]
        return [initial] + [a.probs for a in self.alpha_steps]

    def entropy_curve(self) -> list[float]:
        """Mean normalized entropy of p (1 = uniform, 0 = decided) before the first alpha step
        and after each one."""
        return [float(np.mean(normalized_entropy(p))) for p in self._probs_over_steps()]

    def argmax_agreement_curve(self) -> list[float]:
        """Share of layers whose most probable op already equals the final one, before the first
        alpha step and after each: a curve that reaches 1 early means a stable decision."""
        steps = self._probs_over_steps()
        final = steps[-1]
        return [1.0 - argmax_changes(p, final) / len(final) for p in steps]


@dataclass
class SearchResult:
    """What ``ProxylessSearch.run`` returns: both genotypes, their latencies, the History.

    ``genotype_argmax`` is the most probable op per layer (gradient strategy), or the fittest subnet
    evolution / random search scored (before the closed loop on measured latency)."""

    genotype_argmax: Genotype
    genotype_budget: Genotype
    budget_ms: float
    predicted_argmax_ms: float
    predicted_budget_ms: float
    measured_budget_ms: float | None
    history: History
    out_dir: str | None = None
    latency: dict = field(default_factory=dict)  # backend, precision, latency_size, derive_attempts
    supernet_miou: float | None = None  # the super-net's estimate of genotype_budget (held-out)

    def to_text(self) -> str:
        """A few readable lines for the command line."""
        s = self.summary()
        measured = ("n/a" if self.measured_budget_ms is None
                    else f"{self.measured_budget_ms:.2f} ms measured")
        scored = self.history.strategy
        return "\n".join([
            f"budget {self.budget_ms:.2f} ms; {s['alpha_steps']} alpha steps, "
            f"{s['samples']} sampled subnets, {s['rejected']} rejected as over budget",
            *([f"{scored['strategy']}: {scored['evaluations']} subnets scored by the super-net, "
               f"{scored['rejections']} draws rejected as over budget"] if scored else []),
            f"{'fittest' if scored else 'argmax'} genotype  ({self.predicted_argmax_ms:.2f} ms predicted"
            f"{'' if s['argmax_fits_budget'] else ', OVER BUDGET'}): {' '.join(self.genotype_argmax.ops)}",
            f"budget genotype  ({self.predicted_budget_ms:.2f} ms predicted, {measured}): "
            f"{' '.join(self.genotype_budget.ops)}",
            *([f"written to {self.out_dir}: "
               f"{'genotype_over_budget.json' if self.within_budget is False else 'genotype.json'}"
               ", genotype_argmax.json, history.json, latency_table.json, summary.json"]
              if self.out_dir else []),
        ])

    @property
    def within_budget(self) -> bool | None:
        """Whether the derived genotype was *measured* within the budget (None: not measured)."""
        if self.measured_budget_ms is None:
            return None
        return self.measured_budget_ms <= self.budget_ms

    def summary(self) -> dict:
        """JSON-able summary (what ``summary.json`` holds)."""
        samples = self.history.samples()
        rejected = sum(not s.accepted for s in samples)
        return {"budget_ms": self.budget_ms,
                "strategy": self.history.config.get("strategy", "gradient"),
                "evaluations": self.history.strategy["evaluations"] if self.history.strategy
                else None,
                "supernet_miou": self.supernet_miou,
                "predicted_ms": self.predicted_budget_ms,
                "measured_ms": self.measured_budget_ms,
                "within_budget": self.within_budget,
                "backend": self.latency.get("backend"),
                "precision": self.latency.get("precision"),
                "latency_size": self.latency.get("latency_size"),
                "calibrated": self.latency.get("calibrated"),
                "rejection_rate": rejected / len(samples) if samples else 0.0,
                "derive_attempts": self.latency.get("derive_attempts", []),
                "genotype_budget": list(self.genotype_budget.ops),
                "genotype_argmax": list(self.genotype_argmax.ops),
                "predicted_budget_ms": self.predicted_budget_ms,
                "predicted_argmax_ms": self.predicted_argmax_ms,
                "argmax_fits_budget": self.predicted_argmax_ms <= self.budget_ms,
                "measured_budget_ms": self.measured_budget_ms,
                "alpha_steps": len(self.history.alpha_steps),
                "weight_steps": len(self.history.weight_steps),
                "samples": len(samples),
                "rejected": rejected}
