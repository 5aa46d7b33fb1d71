"""The report of ``benchmarks/rank.py``, from whatever pieces its state holds (partial allowed).

``build_report(state_data)`` is pure (a dict in, a dict out): per subnet its stand-alone mIoU per
seed and every super-net's estimate; per group (each budget's subnets, and all of them) Kendall's
tau and Spearman's rho of every score against the stand-alone mean, with 95% bootstrap intervals
(``nas.rank.rank_agreement``). The scores: each super-net with its shared BatchNorm statistics and
recalibrated ("+BN"), #params, FLOPs and predicted latency alone, and one training seed against the
other ("seed vs seed": how well the truth ranks itself). From that last row, the "noise ceiling":
what a perfect score would reach against the mean of the seeds (``nas.rank.noise_ceiling``,
Spearman-Brown), the scale on which the super-nets' tau is read. A group with fewer than 3
subnets that have both values has no tau yet. ``write_report`` prints the table
and writes the JSON and the figure (``teaching.plots.rank_figure``).
"""
from __future__ import annotations

import math
import statistics
import warnings

from common import environment, print_table, write_json

from segnas_lite.nas.rank import noise_ceiling, rank_agreement

AIM_TAU = 0.6  # issue 26's aim for the best super-net estimate


def _finite(value):
    return None if isinstance(value, float) and not math.isfinite(value) else value


def subnet_rows(data: dict) -> list[dict]:
    """One row per selected subnet: latency, size, stand-alone mIoU per seed (mean, lowest,
    highest) and every variant's estimates (None where a piece is not done)."""
    recipe, pieces = data["recipe"], data["pieces"]
    selection = pieces["subnets"]["selection"]
    rows = []
    for key, subnet in selection["subnets"].items():
        seeds = {str(seed): (pieces.get("standalone", {}).get(f"{key}/s{seed}") or {}).get("miou")
                 for seed in recipe["train_seeds"]}
        values = [v for v in seeds.values() if v is not None]
        rows.append({"key": key, "ops": subnet["ops"], "budgets": subnet["budgets"],
                     "predicted_ms": subnet["predicted_ms"], "params": subnet["params"],
                     "gflops": subnet["gflops"], "miou_seeds": seeds,
                     "miou": statistics.fmean(values) if values else None,
                     "miou_low": min(values, default=None), "miou_high": max(values, default=None),
                     "estimates": {name: pieces.get("estimate", {}).get(f"{name}/{key}")
                                   for name in recipe["variants"]}})
    return rows


def scores(recipe: dict) -> list[tuple[str, str, object]]:
    """(label, kind, row -> score) of every ranked score but the seed-against-seed one."""
    out = []
    for name in recipe["variants"]:
        for label, kind, which in ((name, "supernet", "plain"),
                                   (f"{name} +BN", "recalibrated", "recal")):
            out.append((label, kind, lambda r, n=name, w=which: (r["estimates"][n] or {}).get(w)))
    out += [("#params", "proxy", lambda r: r["params"]), ("FLOPs", "proxy", lambda r: r["gflops"]),
            ("predicted latency", "proxy", lambda r: r["predicted_ms"])]
    return out


def agreement(group: str, label: str, kind: str, pairs: list[tuple[float, float]], *,
              bootstrap: int) -> dict:
    """``rank_agreement`` of (score, truth) ``pairs`` as a report row (no tau below 3 pairs)."""
    row = {"group": group, "score": label, "kind": kind, "n": len(pairs)}
    keys = ("kendall", "kendall_p", "kendall_low", "kendall_high", "spearman", "spearman_low",
            "spearman_high")
    if len(pairs) < 3:
        return {**row, **dict.fromkeys(keys), "note": "fewer than 3 subnets with both values"}
    with warnings.catch_warnings():  # resamples of tied values: scipy warns, tau counts as 0
        warnings.simplefilter("ignore")
        found = rank_agreement([p[0] for p in pairs], [p[1] for p in pairs], bootstrap=bootstrap)
    values = {key: _finite(getattr(found, key)) for key in keys}
    for name in ("kendall", "spearman"):  # no statistic (a constant score): no interval either
        if values[name] is None:
            values[f"{name}_low"] = values[f"{name}_high"] = None
    return {**row, **values}


def ceiling_row(between: dict, *, seeds: int) -> dict:
    """The noise ceiling of a group from its seed-against-seed row: each statistic and interval
    end mapped through ``noise_ceiling`` (monotone, so the interval carries over)."""
    row = {**between, "score": "noise ceiling", "kind": "ceiling", "kendall_p": None}
    for name in ("kendall", "spearman"):
        for key in (name, f"{name}_low", f"{name}_high"):
            if between[key] is not None:
                row[key] = noise_ceiling(between[key], seeds=seeds, statistic=name)
    return row


def done_counts(data: dict) -> dict:
    """Pieces done / planned per kind."""
    recipe, pieces = data["recipe"], data["pieces"]
    subnets = pieces["subnets"]["selection"]["subnets"]
    variants, seeds = recipe["variants"], recipe["train_seeds"]
    return {"standalone": [len(pieces.get("standalone", {})), len(subnets) * len(seeds)],
            "supernet": [len(pieces.get("supernet", {})), len(variants)],
            "estimate": [len(pieces.get("estimate", {})), len(subnets) * len(variants)]}


def build_report(data: dict, *, bootstrap: int = 2000) -> dict:
    """Everything the JSON, the printed table and the figure show (see the module docstring)."""
    recipe = data["recipe"]
    if "selection" not in data["pieces"].get("subnets", {}):
        return {"partial": True, "note": "no subnets selected yet: nothing to report"}
    selection = data["pieces"]["subnets"]["selection"]
    rows = subnet_rows(data)
    groups = [*(f"{f:g}" for f in recipe["budget_fracs"]), "all"]
    seeds = [str(s) for s in recipe["train_seeds"]]
    table = []
    for group in groups:
        members = [r for r in rows if group == "all" or group in r["budgets"]]
        for label, kind, score in scores(recipe):
            pairs = [(score(r), r["miou"]) for r in members
                     if score(r) is not None and r["miou"] is not None]
            table.append(agreement(group, label, kind, pairs, bootstrap=bootstrap))
        if len(seeds) >= 2:
            pairs = [(r["miou_seeds"][seeds[0]], r["miou_seeds"][seeds[1]]) for r in members
                     if r["miou_seeds"][seeds[0]] is not None
                     and r["miou_seeds"][seeds[1]] is not None]
            between = agreement(group, f"seed {seeds[0]} vs seed {seeds[1]}", "seeds", pairs,
                                bootstrap=bootstrap)
            table += [between, ceiling_row(between, seeds=len(seeds))]
    counts = done_counts(data)
    ranked = [r for r in table if r["group"] == "all" and r["kind"] in ("supernet", "recalibrated")
              and r["kendall"] is not None]
    best = max(ranked, key=lambda r: r["kendall"], default=None)
    params = next((r for r in table if r["group"] == "all" and r["score"] == "#params"), None)
    ceiling = next((r for r in table if r["group"] == "all" and r["kind"] == "ceiling"), None)
    return {"partial": any(done < planned for done, planned in counts.values()), "done": counts,
            "busy": bool(selection.get("busy")), "budgets_ms": selection["budgets_ms"],
            "groups": groups, "subnets": rows, "agreements": table,
            "best": None if best is None else {
                "score": best["score"], "kendall": best["kendall"],
                "kendall_low": best["kendall_low"], "kendall_high": best["kendall_high"],
                "aim": AIM_TAU, "aim_met": best["kendall"] >= AIM_TAU,
                "ceiling": ceiling["kendall"] if ceiling else None,
                "ceiling_low": ceiling["kendall_low"] if ceiling else None,
                "ceiling_high": ceiling["kendall_high"] if ceiling else None,
                "params_kendall": params["kendall"] if params else None,
                "beats_params": (None if not params or params["kendall"] is None
                                 else best["kendall"] > params["kendall"])}}


def _signed(value) -> str:
    return "n/a" if value is None else f"{value:+.3f}"


def _interval(low, high) -> str:
    return "n/a" if low is None else f"[{low:+.2f}, {high:+.2f}]"


def print_report(report: dict) -> str:
    """The agreement table and a few summary lines; returns the table's text."""
    if "agreements" not in report:
        print(report["note"])
        return report["note"]
    rows = [{**r, "tau_ci": _interval(r["kendall_low"], r["kendall_high"]),
             "rho_ci": _interval(r["spearman_low"], r["spearman_high"])}
            for r in report["agreements"]]
    text = print_table(rows, [("group", "budget", "s"), ("score", "score", "s"), ("n", "n", "d"),
                              ("kendall", "tau", "+.3f"), ("tau_ci", "tau 95%", "s"),
                              ("spearman", "rho", "+.3f"), ("rho_ci", "rho 95%", "s")])
    done = ", ".join(f"{kind} {d}/{p}" for kind, (d, p) in report["done"].items())
    print(f"\n{'PARTIAL' if report['partial'] else 'complete'}: {done}")
    best = report["best"]
    if best is not None:
        print(f"best super-net score over all subnets: {best['score']} tau {best['kendall']:+.3f} "
              f"{_interval(best['kendall_low'], best['kendall_high'])} (aim {best['aim']}; "
              f"#params alone: {_signed(best['params_kendall'])}; noise ceiling "
              f"{_signed(best.get('ceiling'))} "
              f"{_interval(best.get('ceiling_low'), best.get('ceiling_high'))})")
    if report["busy"]:
        print("WARNING: the latency table was measured on a busy machine: the subnets' predicted "
              "latencies are unreliable; re-run with --fresh --refresh-latency on a quiet machine "
              "before quoting")
    return text


def figure_data(report: dict) -> tuple[list[dict], list[dict]]:
    """(scatter panels, tau bar groups) for ``plots.rank_figure`` (``plots.rank_report_data``)."""
    from segnas_lite.teaching.plots import rank_report_data
    return rank_report_data(report)


def write_report(data: dict, *, json_path, bootstrap: int = 2000) -> dict:
    """Print the report of ``data`` (a state's JSON) and write it to ``json_path`` and the
    figure beside it (``.png``)."""
    from pathlib import Path
    from segnas_lite.teaching.plots import rank_figure, save_figure
    report = build_report(data, bootstrap=bootstrap)
    text = print_report(report)
    json_path = Path(json_path)
    if "agreements" in report:
        panels, groups = figure_data(report)
        title = ("super-net estimate vs stand-alone mIoU" + (" (partial)" if report["partial"]
                                                              else ""))
        save_figure(rank_figure(panels, groups, title=title), json_path.with_suffix(".png"))
    write_json(json_path, {"environment": environment(), "settings": data["recipe"], **report,
                           "stage_seconds": data.get("stages", {}), "runs": data.get("runs"),
                           "load": data.get("load", []), "table": text})
    return report
