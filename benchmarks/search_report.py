"""The report of ``benchmarks/search.py``, from whatever pieces its state holds (partial allowed).

``nets_of(data)`` lists the nets of every budget from a state's JSON (``search.py`` plans their
trainings from it too); ``build_report(data)`` is pure (a dict in, a dict out):

* per net: its stand-alone mIoU per training seed, mean and standard deviation; its latency, params
  and FLOPs from the ``latency`` piece, quoted only when that piece covers every net and was not
  measured on a busy machine (all rows then come from one run);
* per budget and strategy: the mean over its nets (one per search seed) minus the mean over the
  random subnets of that budget, with a 95% bootstrap interval (``scipy.stats.bootstrap``,
  percentile) and the verdict read from the interval (``verdict``);
* two checks of that verdict against latency (``latency_checks``), since a faster-is-worse trade
  can pass for a better search: how much slower its nets are than the random ones by the latency
  rows (``latency_gap_ms``), and the same comparison again with only the nets that fit the budget
  by those rows (``benchmark_clock``). A search judges a net by the closed loop's measurement, the
  rows measure every net again in one run; a net near the edge may be in by one, out by the other.

**The bootstrap unit is the net** (its mean over training seeds), not the single run: a net's
seeds share its architecture, so they are not independent draws of "a searched net" or "a random
net"; resampling the runs would count every net three times and make the interval too narrow
(pseudo-replication). The two groups are resampled independently (``paired=False``). With two
search seeds a group has two values, and the bootstrap's spread is (n - 1)/n of the sample's, half
of it for n = 2: the interval is optimistic; more search seeds make it honest.
"""
from __future__ import annotations

import json
import statistics
import warnings
from pathlib import Path

import numpy as np
from scipy import stats

from common import environment, print_table, write_json
from search_pieces import net_key

AIM_POINTS = 0.01  # issue 26's aim: a strategy beats random-in-budget by >= 1 mIoU point
BOOTSTRAP_UNIT = ("the net: the mean over its training seeds (the seeds of one net are not "
                  "independent nets; resampling runs would count each net three times)")


def _budgets(data: dict) -> dict:
    return (data["pieces"].get("budgets", {}).get("budgets") or {}).get("budgets_ms", {})


def nets_of(data: dict) -> list[dict]:
    """Every net of every budget whose piece is recorded: each strategy's searched net per search
    seed, the random subnets of the budget's window, and the widest scaled MobileNetV3 baseline
    measured within the budget. Dicts with budget, kind, label, key, space, ops, selected_ms (the
    measurement that chose it: the search's closed loop, or the selection's)."""
    recipe, pieces = data["recipe"], data["pieces"]
    budgets, select = _budgets(data), pieces.get("select", {})
    nets = []

    def add(budget: str, kind: str, label: str, space: str, ops, selected_ms, **extra) -> None:
        nets.append({"budget": budget, "budget_frac": float(budget), "budget_ms": budgets[budget],
                     "kind": kind, "label": label, "key": net_key(space, ops), "space": space,
                     "ops": list(ops), "selected_ms": selected_ms, **extra})

    for frac in recipe["budget_fracs"]:
        budget = f"{frac:g}"
        if budget not in budgets:
            continue
        for seed in recipe["search_seeds"]:
            for strategy in recipe["strategies"]:
                done = pieces.get("search", {}).get(f"{budget}/s{seed}/{strategy}")
                if done is not None:
                    add(budget, "searched", f"{strategy} s{seed}", recipe["space"],
                        done["genotype"], done["measured_ms"], strategy=strategy,
                        search_seed=seed, within_budget=done["within_budget"] is not False,
                        selected_busy=done["busy"])
        chosen = select.get(f"random/{budget}")
        for i, subnet in enumerate(chosen["random"] if chosen else []):
            add(budget, "random", f"random {i}", recipe["space"], subnet["ops"],
                subnet["fit_ms"], within_budget=True, selected_busy=chosen["busy"])
        widths = select.get("widths")
        fitting = [w for w in (widths["widths"] if widths else [])
                   if w["fit_ms"] <= budgets[budget]]
        if fitting:
            best = max(fitting, key=lambda w: w["width"])
            add(budget, "mbv3_scaled", f"mbv3 w{best['width']:g}", best["space"], best["ops"],
                best["fit_ms"], width=best["width"], within_budget=True,
                selected_busy=widths["busy"])
    return nets


def unique_nets(data: dict) -> list[dict]:
    """``nets_of`` with each net once (a net found in two budgets too)."""
    seen: dict[str, dict] = {}
    for net in nets_of(data):
        seen.setdefault(net["key"], net)
    return list(seen.values())


def every_net_known(data: dict) -> bool:
    """Whether every search and selection is recorded (the set of nets is then complete)."""
    recipe, pieces = data["recipe"], data["pieces"]
    searches, select = pieces.get("search", {}), pieces.get("select", {})
    return all(f"{f:g}/s{s}/{g}" in searches for f in recipe["budget_fracs"]
               for s in recipe["search_seeds"] for g in recipe["strategies"]) and all(
        k in select for k in ["widths", *(f"random/{f:g}" for f in recipe["budget_fracs"])])


def latency_status(data: dict, nets: list[dict]) -> dict:
    """Whether the latency piece may be quoted: it exists, covers every net, and was quiet."""
    done = data["pieces"].get("latency", {}).get("rows")
    if done is None:
        return {"status": "missing", "quoted": False}
    info = {k: done.get(k) for k in ("run", "cpu", "date", "busy", "noise_pct")}
    if done["busy"]:
        return {**info, "status": "busy: not quoted (measured again on the next run)",
                "quoted": False}
    if set(done["keys"]) != {net["key"] for net in nets}:
        return {**info, "status": "stale: the nets changed since (measured again on the next run)",
                "quoted": False}
    return {**info, "status": "quiet", "quoted": True}


def bootstrap_difference(ours, theirs, *, resamples: int, seed: int = 0) -> tuple:
    """``mean(ours) - mean(theirs)`` and its 95% percentile bootstrap interval, the two groups
    resampled independently; no interval (None, None) with fewer than 2 values on a side."""
    ours, theirs = np.asarray(ours, float), np.asarray(theirs, float)
    difference = float(ours.mean() - theirs.mean())
    if resamples < 1 or ours.size < 2 or theirs.size < 2:
        return difference, None, None

    def statistic(a, b, axis):
        return np.mean(a, axis=axis) - np.mean(b, axis=axis)

    with warnings.catch_warnings():  # a degenerate resample distribution: scipy warns
        warnings.simplefilter("ignore")
        found = stats.bootstrap((ours, theirs), statistic, paired=False, vectorized=True,
                                n_resamples=resamples, confidence_level=0.95, method="percentile",
                                random_state=np.random.default_rng(seed))
    return difference, float(found.confidence_interval.low), float(found.confidence_interval.high)


def verdict(low, high) -> str:
    """What the interval says: above zero, below zero, or across it."""
    if low is None or high is None:
        return "too few nets"
    if low > 0:
        return "beats random"
    if high < 0:
        return "worse"
    return "no separable difference"


def _mean(values):
    return statistics.fmean(values) if values else None


def net_rows(data: dict) -> tuple[list[dict], dict]:
    """``nets_of`` with each net's mIoU per seed (mean, std, lowest, highest) and, when quotable,
    its latency, params and FLOPs; plus the latency status."""
    recipe, pieces = data["recipe"], data["pieces"]
    nets = nets_of(data)
    status = latency_status(data, nets)
    measured = (pieces.get("latency", {}).get("rows") or {}).get("nets", {})
    for net in nets:
        seeds = {str(s): (pieces.get("train", {}).get(f"{net['key']}/s{s}") or {}).get("miou")
                 for s in recipe["train_seeds"]}
        values = [v for v in seeds.values() if v is not None]
        row = measured.get(net["key"], {}) if status["quoted"] else {}
        net.update(miou_seeds=seeds, n=len(values), miou=_mean(values),
                   miou_std=statistics.stdev(values) if len(values) >= 2 else None,
                   miou_low=min(values, default=None), miou_high=max(values, default=None),
                   latency_ms=row.get("latency_ms"), params=row.get("params"),
                   gflops=row.get("gflops"))
        ms = net["latency_ms"]
        net["fits_by_benchmark_clock"] = None if ms is None else ms <= net["budget_ms"]
    return nets, status


def comparisons(nets: list[dict], recipe: dict, *, bootstrap: int) -> list[dict]:
    """Per budget and strategy: its nets' mean against the random subnets' mean (see module
    docstring), and both against the scaled baseline (one net: no interval)."""
    out = []
    for frac in recipe["budget_fracs"]:
        budget = f"{frac:g}"
        here = [n for n in nets if n["budget"] == budget and n["miou"] is not None]
        random_means = [n["miou"] for n in here if n["kind"] == "random"]
        baseline = next((n["miou"] for n in here if n["kind"] == "mbv3_scaled"), None)
        for strategy in recipe["strategies"]:
            ours = [n for n in here if n.get("strategy") == strategy]
            left_out = [n["label"] for n in ours if not n["within_budget"]]
            means = [n["miou"] for n in ours if n["within_budget"]]
            row = {"budget": budget, "strategy": strategy, "nets": len(means),
                   "random_nets": len(random_means), "left_out_over_budget": left_out,
                   "mean": _mean(means), "random_mean": _mean(random_means),
                   "mbv3_scaled": baseline, "difference": None, "low": None, "high": None}
            if means and random_means:
                row["difference"], row["low"], row["high"] = bootstrap_difference(
                    means, random_means, resamples=bootstrap)
            row["verdict"] = verdict(row["low"], row["high"])
            row["aim_met"] = bool(row["low"] is not None and row["low"] > 0
                                  and row["difference"] >= AIM_POINTS)
            row["minus_mbv3_scaled"] = (None if row["mean"] is None or baseline is None
                                        else row["mean"] - baseline)
            out.append(row)
    return out


def latency_checks(nets: list[dict], rows: list[dict], *, bootstrap: int) -> None:
    """Add to each comparison row ``latency_gap_ms`` (its nets' mean latency minus the random
    subnets', by the latency rows) and ``benchmark_clock`` (the comparison with only the nets the
    rows find within the budget, on both sides). Both None while the rows are not quoted."""
    for row in rows:
        here = [n for n in nets if n["budget"] == row["budget"] and n["miou"] is not None]
        ours = [n for n in here if n.get("strategy") == row["strategy"] and n["within_budget"]]
        random_nets = [n for n in here if n["kind"] == "random"]
        row["latency_gap_ms"] = row["benchmark_clock"] = None
        if not ours or not random_nets or any(n["latency_ms"] is None for n in ours + random_nets):
            continue
        row["latency_gap_ms"] = (_mean([n["latency_ms"] for n in ours])
                                 - _mean([n["latency_ms"] for n in random_nets]))
        fit = [n["miou"] for n in ours if n["fits_by_benchmark_clock"]]
        fit_random = [n["miou"] for n in random_nets if n["fits_by_benchmark_clock"]]
        check = {"nets": len(fit), "random_nets": len(fit_random), "difference": None,
                 "low": None, "high": None}
        if fit and fit_random:
            check["difference"], check["low"], check["high"] = bootstrap_difference(
                fit, fit_random, resamples=bootstrap)
        check["verdict"] = verdict(check["low"], check["high"])
        row["benchmark_clock"] = check


def budget_verdicts(rows: list[dict]) -> dict:
    """Per budget: each strategy's verdict, and the answer (the strategies that beat random)."""
    out = {}
    for row in rows:
        entry = out.setdefault(row["budget"], {"strategies": {}})
        entry["strategies"][row["strategy"]] = row["verdict"]
    for entry in out.values():
        said = entry["strategies"]
        winners = [s for s, v in said.items() if v == "beats random"]
        entry["answer"] = (f"beats random: {', '.join(winners)}" if winners else
                           "too few nets" if all(v == "too few nets" for v in said.values()) else
                           "worse" if all(v == "worse" for v in said.values()) else
                           "no separable difference")
    return out


def done_counts(data: dict, nets: list[dict]) -> dict:
    """Pieces done / planned per kind (trainings of the nets known so far)."""
    recipe, pieces = data["recipe"], data["pieces"]
    searches = len(recipe["budget_fracs"]) * len(recipe["search_seeds"]) * len(
        recipe["strategies"])
    keys = {n["key"] for n in nets}
    trained = sum(f"{k}/s{s}" in pieces.get("train", {}) for k in keys
                  for s in recipe["train_seeds"])
    quiet = lambda p: p is not None and not p.get("busy")  # noqa: E731
    return {"select": [sum(quiet(p) for p in pieces.get("select", {}).values()),
                       1 + len(recipe["budget_fracs"])],
            "search": [len(pieces.get("search", {})), searches],
            "latency": [int(quiet(pieces.get("latency", {}).get("rows"))), 1],
            "train": [trained, len(keys) * len(recipe["train_seeds"])]}


def build_report(data: dict, *, bootstrap: int = 10000) -> dict:
    """Everything the JSON, the printed tables and the figure show (module docstring)."""
    if not _budgets(data):
        return {"partial": True, "note": "no budgets yet: nothing to report"}
    nets, status = net_rows(data)
    rows = comparisons(nets, data["recipe"], bootstrap=bootstrap)
    latency_checks(nets, rows, bootstrap=bootstrap)
    counts = done_counts(data, nets)
    budgets = data["pieces"]["budgets"]["budgets"]
    busy = bool(budgets.get("busy")) or not status["quoted"] or any(
        (p or {}).get("busy") for p in data["pieces"].get("select", {}).values())
    return {"partial": any(d < p for d, p in counts.values()), "done": counts, "busy": busy,
            "budgets_ms": budgets["budgets_ms"], "predictor_busy": bool(budgets.get("busy")),
            "clock": budgets.get("clock", {"clock": "wall"}), "cpu": budgets.get("cpu"),
            "latency": status, "rows": nets, "comparisons": rows,
            "verdict": budget_verdicts(rows), "aim_points": AIM_POINTS,
            "bootstrap": {"unit": BOOTSTRAP_UNIT, "method": "percentile", "paired": False,
                          "resamples": bootstrap, "confidence": 0.95}}


def _fmt(value, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)


def clock_text(report: dict) -> str:
    """Which milliseconds the report's latencies are (wall clock, or paced: ``timing.pace``)."""
    clock = report.get("clock") or {"clock": "wall"}
    if clock.get("clock") != "paced":
        return f"wall-clock ms on {report.get('cpu')}"
    return (f"paced ms on {report.get('cpu')}: each call read against {clock['reference']} "
            f"called in the same moments, 1 paced unit = {clock['reference_ms']:.3f} ms")


def print_report(report: dict) -> str:
    """The net table, the comparison table and the verdicts; returns both tables' text."""
    if "rows" not in report:
        print(report["note"])
        return report["note"]
    rows = [{**r, "miou_pm": (f"{_fmt(r['miou'])} +- {_fmt(r['miou_std'])}"
                              if r["miou"] is not None else "n/a")} for r in report["rows"]]
    nets = print_table(rows, [
        ("budget", "budget", "s"), ("kind", "kind", "s"), ("label", "net", "s"),
        ("selected_ms", "selected ms", ".2f"), ("selected_busy", "busy", ""),
        ("latency_ms", "ms", ".2f"),
        ("params", "params", ","), ("gflops", "GFLOPs", ".3f"), ("n", "seeds", "d"),
        ("miou_pm", "mIoU mean +- std", "s")])
    print()
    cmp_rows = [{**r, "ci": "n/a" if r["low"] is None else f"[{r['low']:+.3f}, {r['high']:+.3f}]"}
                for r in report["comparisons"]]
    compared = print_table(cmp_rows, [
        ("budget", "budget", "s"), ("strategy", "strategy", "s"), ("nets", "nets", "d"),
        ("mean", "mIoU", ".3f"), ("random_mean", "random", ".3f"),
        ("difference", "diff", "+.3f"), ("ci", "95% bootstrap", "s"),
        ("minus_mbv3_scaled", "vs mbv3", "+.3f"), ("verdict", "verdict", "s")])
    checked = [{**r, **{f"clock_{k}": v for k, v in (r.get("benchmark_clock") or {}).items()}}
               for r in report["comparisons"] if r.get("benchmark_clock") is not None]
    if checked:
        heading = ("the same, checked against the latency rows (only nets within the budget by "
                   "them):")
        print("\n" + heading)
        for r in checked:
            r["fit"] = (f"{r['clock_nets']}/{r['nets']} vs "
                        f"{r['clock_random_nets']}/{r['random_nets']}")
            r["clock_ci"] = ("n/a" if r["clock_low"] is None
                             else f"[{r['clock_low']:+.3f}, {r['clock_high']:+.3f}]")
        compared += "\n\n" + heading + "\n" + print_table(checked, [
            ("budget", "budget", "s"), ("strategy", "strategy", "s"),
            ("latency_gap_ms", "ms vs random", "+.2f"), ("fit", "fit: ours vs random", "s"),
            ("clock_difference", "diff", "+.3f"), ("clock_ci", "95% bootstrap", "s"),
            ("clock_verdict", "verdict", "s")])
    done = ", ".join(f"{kind} {d}/{p}" for kind, (d, p) in report["done"].items())
    print(f"\n{'PARTIAL' if report['partial'] else 'complete'}: {done}")
    for budget, entry in report["verdict"].items():
        print(f"budget {budget} ({report['budgets_ms'][budget]:.2f} ms): {entry['answer']}")
    print(f"latency rows: {report['latency']['status']}")
    print(f"latency clock: {clock_text(report)}")
    if report["busy"]:
        print("WARNING: some latency piece was measured on a busy machine (or is missing): do not "
              "quote latencies from this report; the next run measures it again")
    return nets + "\n\n" + compared


# --------------------------------------------------------------------------- the figure
def rank_panel(rank_json: Path | None, warmup: str) -> dict | None:
    """The rank-correlation scatter panel of the super-net variant the searches used, from
    ``rank.py``'s report (None when there is none)."""
    if rank_json is None or not Path(rank_json).is_file():
        return None
    from rank_report import figure_data
    report = json.loads(Path(rank_json).read_text())
    if "subnets" not in report or "agreements" not in report:
        return None
    panels, _ = figure_data(report)
    return next((p for p in panels if p["title"].split(":")[0] == warmup), None)


def write_report(data: dict, *, json_path, rank_json=None, bootstrap: int = 10000) -> dict:
    """Print the report of ``data`` (a state's JSON); write it to ``json_path`` and the Pareto
    figure (beside the rank scatter when ``rank_json`` exists) to ``<stem>_pareto.png``. Nothing
    is written before the budgets are fixed (an earlier report stays as it is)."""
    from segnas_lite.teaching.plots import save_figure, study_figure
    report = build_report(data, bootstrap=bootstrap)
    text = print_report(report)
    json_path = Path(json_path)
    if "rows" not in report:
        return report
    quoted = report["latency"]["quoted"]
    paced = (report.get("clock") or {}).get("clock") == "paced"
    title = ("mIoU (mean +- std over seeds) vs " + ("paced " if paced else "")
             + ("measured latency" if quoted else "selection-time latency (not for quoting)")
             + (" (partial)" if report["partial"] else ""))
    figure = study_figure(report["rows"], report["budgets_ms"],
                          rank_panel(rank_json, data["recipe"]["warmup"]),
                          latency_key="latency_ms" if quoted else "selected_ms",
                          window=tuple(data["recipe"]["window"]), title=title)
    save_figure(figure, json_path.with_name(json_path.stem + "_pareto.png"))
    write_json(json_path, {"environment": environment(), "settings": data["recipe"], **report,
                           "stage_seconds": data.get("stages", {}), "runs": data.get("runs"),
                           "load": data.get("load", []), "table": text})
    return report
