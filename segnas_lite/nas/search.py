"""The search loop: ProxylessNAS (Cai et al., ICLR 2019) with the seed's two changes.

``ProxylessSearch.run`` (lesson 06 tells the story):

1. **Warm-up** (``warmup_epochs``): only the op weights train, on ONE uniformly drawn path per batch
   (super-net mode ``"fixed"``: alpha is not in the graph), or on paths that train a super-net
   that ranks (``warmup.py``: FairNAS cycles with ``warmup_sampling="strict_fair"``; the sandwich
   rule and in-place distillation with ``sandwich`` and ``inplace_distill``).
2. **Search** (``search_epochs``, gradient strategy only): ``schedule="decoupled"`` (the seed's Sec. 2.2: weights FROZEN,
   every batch an alpha step) or ``"interleaved"`` (ProxylessNAS Sec. 3.2.1: weight steps on paths
   drawn from p, an alpha step every ``arch_every`` of them). Alpha steps use a held-out part of the
   training data (``arch_fraction``), weight steps the rest.
3. **Derivation** (``strategies.py``, ``derive.py``): the argmax genotype, and the most probable
   one within the budget; or, for ``strategy="evolution"`` / ``"random"``, the fittest subnet the
   super-net scores within the budget. Either is measured within the budget in a closed loop.

Settings live in ``config.py``, checkpoints and output files in ``checkpoint.py``, and ``run.py``
builds everything from a ``SearchConfig`` (what ``segnas search`` calls). Every sampled subnet
passes the seed's hard latency constraint (``constraint.py``) and every try is recorded in the
``History`` (``history.py``). One alpha step is Eq. 4 plus the latency loss of Sec. 3.3: sample
under the budget -> mode ``"single"`` -> CE on a held-out batch -> ``E[LAT]`` -> ``latency_loss``
-> backward -> Adam on the alphas only.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Callable, Iterator

import torch
from torch import nn
import torch.nn.functional as F
from torch.utils.data import Dataset, Subset

from segnas_lite.data import split_indices
from segnas_lite.train import distributed
from segnas_lite.train.distill import distillation_loss
from segnas_lite.runio import progress, seed_everything, torch_generator
from segnas_lite.nas import checkpoint, parallel
from segnas_lite.nas.config import SearchConfig, SearchConfigError
from segnas_lite.nas.constraint import default_budget, sample_under_budget
from segnas_lite.nas.derive import InfeasibleBudgetError
from segnas_lite.nas.gates import expected_latency, latency_loss
from segnas_lite.nas.history import AlphaStep, EpochSummary, History, Sample, SearchResult, WeightStep
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.gates import frozen
from segnas_lite.nas.measure import MeasuredLatency
from segnas_lite.nas.space import Genotype, SearchSpace
from segnas_lite.nas.strategies import conclude
from segnas_lite.nas.supernet import SegSuperNet
from segnas_lite.nas.warmup import WarmupPaths, multi_path_step


def _plain(value):
    """What ``value`` becomes after a JSON round trip (tuples -> lists), so loading compares equal."""
    return json.loads(json.dumps(value))


def split_for_search(n: int, *, arch_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Deterministic, disjoint ``(weight indices, alpha indices)`` covering ``range(n)``: the
    training/validation cut of ``data.split_indices`` with the alpha steps' share held out."""
    return split_indices(n, val_fraction=arch_fraction, seed=seed)


# --------------------------------------------------------------------------- the search
class ProxylessSearch:
    """Run a ProxylessNAS search on ``supernet`` under the latency ``table`` (see module docstring).

    ``latency_fn`` (genotype -> ms) replaces the constraint's latency source (default: the table, or
    ``MeasuredLatency`` for ``constraint="measured"``); ``child_latency_fn`` how the derived child
    is measured in the closed loop (default: end to end on ``config.target``). ``teacher``: a
    trained model distilled into every weight step with ``config.distill_weight`` (``distill.py``).
    ``on_epoch_end(search, summary)`` is called
    after each epoch's checkpoint is written (a notebook can plot; a test can interrupt).
    """

    def __init__(self, supernet: SegSuperNet, table: LatencyTable, train_set: Dataset, *,
                 config: SearchConfig, num_classes: int, out_dir: str | os.PathLike | None = None,
                 latency_fn: Callable[[Genotype], float] | None = None,
                 child_latency_fn: Callable[[Genotype], float] | None = None,
                 teacher: nn.Module | None = None,
                 on_epoch_end: Callable[["ProxylessSearch", EpochSummary], None] | None = None):
        self.net, self.table, self.config = supernet, table, config
        self.ctx = distributed.init(config.device)  # rank and device; under torchrun: parallel.py
        supernet.to(self.ctx.device)  # the latency table and measurements stay on config.target
        self.space: SearchSpace = supernet.space
        self.num_classes = num_classes
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.on_epoch_end = on_epoch_end
        if table.space != self.space.name or table.ops != [list(s.ops) for s in self.space.layers]:
            raise SearchConfigError(f"the latency table is for space {table.space!r} with ops "
                                    f"{table.ops}; it does not match the super-net's space "
                                    f"{self.space.name!r}: build the table for this space")
        self.lat_tensor = table.tensor()  # (L, K_max) ms, NaN beyond a layer's ops
        self.fastest_ms = table.fastest()[1]
        self.budget_ms = (config.budget_ms if config.budget_ms is not None
                          else default_budget(table, quantile=config.budget_quantile))
        self.teacher = teacher.to(self.ctx.device).eval() if teacher is not None else None
        if config.distill_weight > 0 and teacher is None:
            raise SearchConfigError("distill_weight > 0 needs a teacher: pass a trained model "
                                    "(segnas search --teacher CHECKPOINT)")
        self.macro_config = supernet.macro_config
        if latency_fn is None and config.constraint == "measured":
            latency_fn = self.measured_latency(runs=5, rounds=1)
        self.latency_fn = latency_fn or table.predict
        self.child_latency_fn = child_latency_fn

        self.weight_idx, self.arch_idx = split_for_search(
            len(train_set), arch_fraction=config.arch_fraction, seed=config.seed)
        self.weight_set, self.arch_set = Subset(train_set, self.weight_idx), Subset(train_set,
                                                                                    self.arch_idx)
        self.weight_batches = self._steps(len(self.weight_set), "weight")
        self.arch_batches = self._steps(len(self.arch_set), "alpha")

        self.weights = list(supernet.weight_parameters())
        self.weight_opt = torch.optim.SGD(self.weights, lr=config.weight_lr,
                                          momentum=config.weight_momentum, nesterov=True,
                                          weight_decay=config.weight_decay)
        self.arch_opt = torch.optim.Adam(supernet.arch_parameters(), lr=config.arch_lr,
                                         betas=config.arch_betas, eps=config.arch_eps,
                                         weight_decay=0.0)
        total = self.weight_batches * (config.warmup_epochs + (
            config.alpha_epochs if config.schedule == "interleaved" else 0))
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(  # cosine over all weight steps
            self.weight_opt, lambda step: 0.5 * (1 + math.cos(math.pi * min(step, total) / max(total, 1))))
        self.generator = torch.Generator().manual_seed(config.seed)
        self.warmup_paths = (WarmupPaths(self.space, sampling=config.warmup_sampling,
                                         sandwich=config.sandwich, largest=table.slowest()[0],
                                         smallest=table.fastest()[0], generator=self.generator)
                             if config.sandwich or config.warmup_sampling == "strict_fair" else None)
        self.history = self._new_history()

    # ---- setup helpers
    def measured_latency(self, *, runs: int, rounds: int) -> MeasuredLatency:
        """End-to-end latency on the configured deployment target."""
        return MeasuredLatency(self.space, target=self.config.target, runs=runs, rounds=rounds,
                               macro_config=self.macro_config, num_classes=self.num_classes)

    def _steps(self, n: int, what: str) -> int:
        batches = n // (self.config.batch_size * self.ctx.world_size)  # each process its shard
        if batches < 1:
            raise SearchConfigError(f"the {what} split has {n} samples, fewer than one batch of "
                                    f"{self.config.batch_size} per process ({self.ctx.world_size} "
                                    "processes): add data or lower batch_size")
        cap = self.config.steps_per_epoch
        return batches if cap is None else min(batches, cap)

    def _new_history(self) -> History:
        return History(space=self.space.name, op_names=[list(s.ops) for s in self.space.layers],
                       budget_ms=float(self.budget_ms), fixed_ms=float(self.table.fixed_ms),
                       table_ms=[list(row) for row in self.table.ms],
                       table_meta=_plain(self.table.meta), config=self.config.to_dict(),
                       alpha_init=self._alphas())

    def _alphas(self) -> list[list[float]]:
        return [a.detach().tolist() for a in self.net.arch_parameters()]

    def _loader(self, dataset: Dataset, epoch: int, stream: int) -> Iterator:
        """Batches of ``dataset`` for ``epoch``, in an order fixed by (seed, epoch, stream), forever."""
        return parallel.batches(dataset, batch_size=self.config.batch_size,
                                generator=torch_generator(self.config.seed, epoch, stream),
                                ctx=self.ctx)

    def expected_latency(self) -> torch.Tensor:
        """``E[LAT]`` in ms under the current p, in the autograd graph (Sec. 3.3)."""
        return expected_latency(self.net.probabilities(), self.lat_tensor, self.table.fixed_ms)

    # ---- sampling under the hard constraint
    def sample(self, phase: str, step: int, epoch: int, *, uniform: bool,
               constrained: bool = True) -> list[Sample]:
        """Draw a subnet (uniformly, or from p) under the budget; leaves the super-net on it.

        ``constrained=False`` (the fair warm-up) draws once and keeps it whatever its latency; the
        sample is recorded with its latency and ``accepted=True`` (nothing was rejected). Under
        torchrun rank 0 draws and every rank trains its path (``parallel.same_path``)."""
        return parallel.same_path(self.net, lambda: self._draw(
            phase, step, epoch, uniform=uniform, constrained=constrained), self.ctx)

    def _draw(self, phase: str, step: int, epoch: int, *, uniform: bool,
              constrained: bool) -> list[Sample]:
        if not constrained:
            genotype = self.net.sample_genotype(self.generator, uniform=uniform)
            return [Sample(phase, step, epoch, list(genotype.ops),
                           float(self.table.predict(genotype)), True)]
        tries = sample_under_budget(
            lambda: self.net.sample_genotype(self.generator, uniform=uniform), self.latency_fn,
            self.budget_ms, max_resample=self.config.max_resample, fastest_ms=self.fastest_ms)
        return [Sample(phase, step, epoch, list(g.ops), ms, ok) for g, ms, ok in tries]

    def check_feasible(self) -> None:
        """Up-front check: the fastest architecture must fit the budget (measured if constrained so)."""
        fastest, predicted = self.table.fastest()
        ms = predicted if self.latency_fn == self.table.predict else parallel.from_rank0(
            lambda: float(self.latency_fn(fastest)), self.ctx)
        if ms > self.budget_ms:
            raise InfeasibleBudgetError(
                f"the budget {self.budget_ms:.3f} ms is below the fastest architecture of space "
                f"{self.space.name!r}: {ms:.3f} ms ({self.config.constraint}; predicted "
                f"{predicted:.3f} ms, ops {list(fastest.ops)}). Raise --budget-ms")

    # ---- the two kinds of steps
    def warmup_samples(self, step: int, epoch: int) -> list[Sample]:
        """The paths of a warm-up step, in training order: one uniform path (``"fair"``), one under
        the budget with its rejected tries (``"constrained"``, the seed's), the next of a FairNAS
        cycle (``"strict_fair"``), or the sandwich's slowest, fastest and ``sandwich`` more
        (``warmup.WarmupPaths``; each an accepted sample). Leaves the super-net on the first."""
        if self.warmup_paths is None:
            return self.sample("warmup", step, epoch, uniform=True,
                               constrained=self.config.warmup_sampling == "constrained")
        paths = parallel.from_rank0(self.warmup_paths.next, self.ctx)  # the same on every rank
        self.net.set_genotype(paths[0])
        return [Sample("warmup", step, epoch, list(g.ops), float(self.table.predict(g)), True)
                for g in paths]

    def weight_step(self, images: torch.Tensor, masks: torch.Tensor, *, phase: str,
                    epoch: int) -> WeightStep:
        """One SGD step on the op weights: of the warm-up's paths (``warmup_samples``; a sandwich's
        gradients summed by ``warmup.multi_path_step``), or of one path drawn from p after it."""
        cfg = self.config
        step = len(self.history.weight_steps)
        samples = (self.warmup_samples(step, epoch) if phase == "warmup"
                   else self.sample(phase, step, epoch, uniform=False))
        lr = self.weight_opt.param_groups[0]["lr"]
        self.weight_opt.zero_grad(set_to_none=True)
        if phase == "warmup" and cfg.sandwich:
            losses = multi_path_step(self.net, images, masks,
                                     [Genotype(self.space.name, tuple(s.ops)) for s in samples],
                                     ignore_index=cfg.ignore_index,
                                     inplace_distill=cfg.inplace_distill,
                                     temperature=cfg.distill_temperature)
        else:
            losses = [self._path_backward(images, masks, epoch)]
        distributed.average_gradients(self.weights, self.ctx)  # torchrun: see parallel.py
        self.weight_opt.step()
        self.scheduler.step()
        record = WeightStep(step, epoch, phase,
                            distributed.mean_over_ranks(sum(losses) / len(losses), self.ctx), lr,
                            samples, path_losses=losses if cfg.sandwich and phase == "warmup"
                            else None)
        self.history.weight_steps.append(record)
        return record

    def _path_backward(self, images: torch.Tensor, masks: torch.Tensor, epoch: int) -> float:
        """Loss and backward of the active path (with the teacher's distillation term) -> loss."""
        self.net.set_mode("fixed")
        self.net.train()
        logits = self.net(images)
        loss = F.cross_entropy(logits, masks, ignore_index=self.config.ignore_index)
        if self.teacher is not None and self.config.distill_weight > 0:
            with torch.no_grad():
                teacher_logits = self.teacher(images)
            loss = loss + self.config.distill_weight * distillation_loss(
                logits, teacher_logits, temperature=self.config.distill_temperature,
                target=masks, ignore_index=self.config.ignore_index)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"weight loss became {loss.item()} at epoch {epoch + 1}; "
                                     "lower weight_lr")
        loss.backward()
        return float(loss.detach())

    def alpha_step(self, images: torch.Tensor, masks: torch.Tensor, *, epoch: int) -> AlphaStep:
        """One ProxylessNAS architecture step on a held-out batch (weights frozen).

        BatchNorm keeps batch statistics (``alpha_bn="train"``, as the reference does): the running
        averages describe the mix of paths trained in warm-up, not the sampled path. They are still
        updated (buffers, not parameters); ``alpha_bn="eval"`` freezes them too.
        """
        cfg, net = self.config, self.net
        step = len(self.history.alpha_steps)
        net.set_mode("single", estimator=cfg.estimator)
        samples = self.sample("alpha", step, epoch, uniform=False)
        net.train(cfg.alpha_bn == "train")
        with frozen(self.weights):
            ce = F.cross_entropy(net(images), masks, ignore_index=cfg.ignore_index)
            elat = self.expected_latency()
            # mul_log takes logarithms, so both latencies must be > 1 in their unit: below a
            # millisecond (small images on OpenVINO) they go in microseconds instead
            unit = 1.0 if self.fastest_ms > 1.0 else 1000.0  # E[LAT] >= the fastest net
            loss = latency_loss(ce, elat * unit, budget=self.budget_ms * unit,
                                form=cfg.latency_form, a=cfg.latency_a, b=cfg.latency_b,
                                lam=cfg.latency_lam)
            self.arch_opt.zero_grad(set_to_none=True)
            loss.backward()
        distributed.average_gradients(net.arch_parameters(), self.ctx)  # alphas stay identical
        self._mask_alpha_grads()
        self.arch_opt.step()
        if cfg.estimator == "two":
            net.rescale_two_path()
        net.train()
        pairs = ([[op.names[i] for i in op.pair] for op in net.mixed_ops]
                 if cfg.estimator == "two" else None)
        record = AlphaStep(step, epoch, self._alphas(), [p.detach().tolist() for p in
                                                         net.probabilities()],
                           samples, distributed.mean_over_ranks(float(ce.detach()), self.ctx),
                           distributed.mean_over_ranks(float(loss.detach()), self.ctx),
                           float(elat.detach()),
                           sum(not s.accepted for s in samples) / len(samples), pairs)
        self.history.alpha_steps.append(record)
        return record

    def _mask_alpha_grads(self) -> None:
        """Reference behaviour (``set_arch_param_grad``): a sampled zero op -> no update of that
        layer, latency term included; "two" -> only the pair's alphas keep a gradient (Adam with
        beta1 = 0 then leaves the others exactly where they are; the reference adds the full-softmax
        latency gradient on top, which moves them a little: a deliberate change)."""
        for op in self.net.mixed_ops:
            if op.alpha.grad is None:
                continue
            if op.is_zero:
                op.alpha.grad = None
            elif self.config.estimator == "two" and op.pair is not None:
                keep = torch.zeros_like(op.alpha.grad)
                keep[list(op.pair)] = 1.0
                op.alpha.grad.mul_(keep)

    # ---- epochs
    def run_epoch(self, epoch: int) -> EpochSummary:
        """One epoch: weight steps (warm-up, interleaved) or alpha steps (decoupled search)."""
        cfg = self.config
        started = time.perf_counter()
        phase = "warmup" if epoch < cfg.warmup_epochs else "search"
        w_start, a_start = len(self.history.weight_steps), len(self.history.alpha_steps)
        probs_before = [p.detach().tolist() for p in self.net.probabilities()]
        weights = self._loader(self.weight_set, epoch, 0)
        arch = self._loader(self.arch_set, epoch, 1)
        if phase == "warmup" or cfg.schedule == "interleaved":
            steps = self.weight_batches
        else:
            steps = self.arch_batches
        bar = progress(range(steps), quiet=cfg.quiet or not self.ctx.is_main, leave=False,
                       desc=f"{phase} epoch {epoch + 1}/{cfg.total_epochs}")
        for i in bar:
            if phase == "warmup":
                record = self.weight_step(*next(weights), phase="warmup", epoch=epoch)
            elif cfg.schedule == "decoupled":
                record = self.alpha_step(*next(arch), epoch=epoch)
            else:
                record = self.weight_step(*next(weights), phase="weights", epoch=epoch)
                if (i + 1) % cfg.arch_every == 0:
                    self.alpha_step(*next(arch), epoch=epoch)
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(loss=f"{record.loss:.3f}", tries=len(record.samples))
        with torch.no_grad():
            elat = float(self.expected_latency())
        summary = EpochSummary.of(epoch, phase, self.history.weight_steps[w_start:],
                                  self.history.alpha_steps[a_start:], elat,
                                  time.perf_counter() - started, probs_before,
                                  [p.detach().tolist() for p in self.net.probabilities()])
        self.history.epochs.append(summary)
        return summary

    # ---- the whole thing
    def run(self, *, resume: bool = False, overwrite: bool = False) -> SearchResult:
        """Warm-up, search, derivation; checkpoint after every epoch when ``out_dir`` is set."""
        start = 0
        if self.out_dir is not None:
            checkpoint.prepare_out_dir(self.out_dir, self.table, resume=resume,
                                       overwrite=overwrite, ctx=self.ctx)
        if resume:
            if self.out_dir is None:
                raise SearchConfigError("resume=True needs out_dir")
            start = checkpoint.load(self)
        else:
            seed_everything(self.config.seed)
            self.history = self._new_history()
        distributed.broadcast_tensors(self.net.state_dict().values(), self.ctx)  # rank 0's net
        self.check_feasible()
        for epoch in range(start, self.config.total_epochs):
            summary = self.run_epoch(epoch)
            # weights and alphas are equal on every rank; BatchNorm's running statistics saw each
            # rank's own shard: take rank 0's, as DDP does (broadcast_buffers)
            distributed.broadcast_tensors(self.net.buffers(), self.ctx)
            if self.out_dir is not None:
                checkpoint.save(self, epoch)
            if not self.config.quiet and self.ctx.is_main:
                print(f"epoch {summary.epoch}/{self.config.total_epochs} ({summary.phase}): "
                      f"rejected {summary.rejected}/{summary.samples} samples, "
                      f"E[LAT] {summary.expected_latency_ms:.2f} ms, {summary.seconds:.1f} s")
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, summary)
        return self.derive()

    def derive(self) -> SearchResult:
        """Step 3 by ``config.strategy`` (``strategies.conclude``): the genotype within the budget,
        measured in a closed loop, the super-net's estimate of it and the output files
        (``genotype.json`` only when the measured latency fits; otherwise
        ``genotype_over_budget.json`` and a warning)."""
        if not self.ctx.is_main:  # rank 0 measures the child and writes; the others get its result
            return distributed.broadcast(None, self.ctx)
        return distributed.broadcast(conclude(self), self.ctx)
