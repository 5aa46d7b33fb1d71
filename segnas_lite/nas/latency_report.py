"""``segnas latency``: build (or load) the latency predictor for a deployment target and check it.

One call answers the question a user of the search must ask first: *can I trust the latency the
search optimises?* It builds the in-place table and its calibration for a deployment ``Target``
(``predictor.build_predictor``, cached), measures ``n`` random subnets that the fit did
not see, and reports how well both the plain sum and the calibrated predictor rank and estimate them,
with the measurements' own repeat noise as the floor no predictor can beat.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from segnas_lite.deploy.target import Target
from segnas_lite.runio import atomic_write_text, guard_run_dir
from segnas_lite.timing import SPEED_CHANGE_PCT
from segnas_lite.nas.calibrate import mape
from segnas_lite.nas.latency import LatencyTable
from segnas_lite.nas.predictor import NUM_FIT, build_predictor, spearman, validate
from segnas_lite.nas.space import Genotype, SearchSpace

REPORT = "latency_report.json"
FIGURE = "predicted_vs_measured.png"


def in_place_prediction(table: LatencyTable, genotype: Genotype) -> float:
    """What the uncalibrated in-place table predicts for ``genotype`` (kept in ``meta``)."""
    raw = table.meta.get("in_place", {"ms": table.ms, "fixed_ms": table.fixed_ms})
    return raw["fixed_ms"] + sum(row[names.index(op)]
                                 for row, names, op in zip(raw["ms"], table.ops, genotype.ops))


def latency_report(space: SearchSpace, *, target: Target, out_dir: str | os.PathLike,
                   num_fit: int = NUM_FIT, num_validate: int = 30, seed: int = 0,
                   refresh: bool = False, overwrite: bool = False, quiet: bool = False) -> dict:
    """Build/load the predictor for ``target``, validate it on held-out random subnets, write the
    report and the figure's data into ``out_dir``; returns the report (what ``latency_report.json``
    holds). The figure is drawn by the caller (``teaching.plots.latency_report_figure``): nothing in ``nas`` draws."""
    out = Path(out_dir)
    guard_run_dir(out, [REPORT, FIGURE], resume=False, overwrite=overwrite, what="latency report")
    table = build_predictor(space, target=target, num_fit=num_fit, seed=seed, refresh=refresh,
                            quiet=quiet)
    check = validate(table, space, num_genotypes=num_validate, seed=seed, quiet=quiet)
    genotypes = [Genotype(space.name, tuple(ops)) for ops in check.genotypes]
    before = [in_place_prediction(table, g) for g in genotypes]
    calibration = {k: v for k, v in table.meta["calibration"].items()
                   if k not in ("genotypes", "measured_ms")}
    report = {"spearman": check.spearman, "mape": check.mape, "n": len(genotypes),
              "backend": target.backend, "precision": target.precision,
              "ran_precision": table.meta.get("ran_precision"), "image_size": target.image_size,
              "threads": target.threads, "noise_pct": check.noise_pct,
              "in_place": {"spearman": spearman(before, check.measured_ms),
                           "mape": mape(before, check.measured_ms)},
              "calibration": calibration, "load": check.meta["load"],
              "cpu": table.meta.get("cpu"), "table_key": table.meta.get("key"),
              "predicted_ms": check.predicted_ms, "in_place_ms": before,
              "measured_ms": check.measured_ms, "genotypes": check.genotypes}
    # the OpenVINO probe sees the drift of OpenVINO's own inference; the matrix product the CPU's
    key = ("ov_probe_before_ms" if calibration.get("load", {}).get("ov_probe_before_ms")
           and check.meta["load"].get("ov_probe_before_ms") else "probe_before_ms")
    fitted_probe = calibration.get("load", {}).get(key)
    checked_probe = check.meta["load"].get(key)
    report["speed_vs_calibration_pct"] = (
        round(100.0 * (checked_probe / fitted_probe - 1.0), 1)
        if fitted_probe and checked_probe else None)
    report["space"] = space.name
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / REPORT, json.dumps(report, indent=1))
    return report


def report_text(report: dict) -> str:
    """The report as a few lines for the terminal."""
    busy = report["load"].get("busy")
    lines = [
        f"{report['n']} held-out random subnets, {report['backend']} {report['precision']} "
        f"(ran {report['ran_precision']}), {report['image_size']} px, {report['threads']} threads",
        f"in-place sum : Spearman {report['in_place']['spearman']:.3f}, "
        f"MAPE {report['in_place']['mape']:.1f}%",
        f"calibrated   : Spearman {report['spearman']:.3f}, MAPE {report['mape']:.1f}% "
        f"(fitted on {report['calibration']['num_fit']} other subnets)",
        f"repeat noise : {report['noise_pct']:.1f}% (two independent timings of the same subnets)",
    ]
    drift = report.get("speed_vs_calibration_pct")
    if drift is not None and abs(drift) > SPEED_CHANGE_PCT:
        lines.append(f"WARNING: the machine ran a fixed probe {drift:+.0f}% differently than when "
                     "the predictor was calibrated: its milliseconds are off by about as much "
                     "(refresh it: --refresh)")
    if busy:
        lines.append("WARNING: the machine was busy while measuring; do not quote these numbers")
    return "\n".join(lines)
