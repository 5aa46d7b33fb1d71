"""What the lessons and the workshop plans quote agrees with the saved notebooks (issue 24, items 1, 8).

(a) Run times: each lesson's "Workshop-size run: X on 2 cores" is its workshop copy's papermill
    duration, and every run time quoted in ``lessons/*.md`` is what
    ``python -m segnas_lite.teaching.run_times`` computes from the saved copies. After the copies are
    executed again, ``python -m segnas_lite.teaching.run_times --write`` brings them up to date.
(b) The plans: the 1-day blocks are the lessons' own minutes plus exercises, back to back; the 3-hour
    plan fills three hours; lessons 00-05 state the sum of their instructor notes' timing.
(c) Figures and claims the lessons 00-05 take from the outputs, checked against both saved copies
    (``notebooks/NN_*.ipynb``, quick; ``notebooks/workshop/NN_*.ipynb``, workshop size).
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from segnas_lite.teaching import run_times

REPO = Path(__file__).resolve().parents[1]
LESSONS = REPO / "lessons"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NUMBERS = [path.name[:2] for path in NOTEBOOKS]
REWRITE = "run `python -m segnas_lite.teaching.run_times --write` after executing the copies"


def _lesson(number: str) -> str:
    return next(LESSONS.glob(f"{number}_*.md")).read_text(encoding="utf-8")


def _prose(number: str) -> str:
    """The lesson with its whitespace normalised, so a quoted phrase may break across lines."""
    return " ".join(_lesson(number).split())


def _copies(number: str) -> dict[str, Path]:
    quick = next((REPO / "notebooks").glob(f"{number}_*.ipynb"))
    return {"quick": quick, "workshop": REPO / "notebooks" / "workshop" / quick.name}


def _printed(path: Path, needle: str) -> str:
    """The text output of the one code cell whose source contains ``needle``."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
             if c["cell_type"] == "code" and needle in "".join(c["source"])]
    assert len(cells) == 1, f"{path.name}: expected one code cell with {needle!r}, found {len(cells)}"
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in cells[0].get("outputs", []))


# --------------------------------------------------------------------------- (a) run times
@pytest.mark.parametrize("number", NUMBERS)
def test_lesson_states_its_workshop_copys_run_time(number):
    match = run_times.RUN_LINE.search(_lesson(number))
    assert match, f"lesson {number} has no 'Workshop-size run: X on 2 cores' line"
    stated = run_times.parse_seconds(match.group(2))
    saved = run_times.notebook_seconds(_copies(number)["workshop"])
    unit = 60.0 if match.group(2).endswith("min") else 1.0
    assert abs(stated - saved) <= 0.05 * unit + 1e-6, \
        f"lesson {number} states {match.group(2)}, its workshop copy ran {saved:.1f} s: {REWRITE}"


def test_every_quoted_run_time_is_current():
    stale = run_times.updates(REPO)
    assert not stale, f"out of date: {', '.join(p.name for p in stale)}: {REWRITE}"


def _notebook(duration: float, cells: list[tuple[str, str, float]]) -> str:
    return json.dumps({"cells": [{"cell_type": kind, "metadata": {"papermill": {"duration": seconds}},
                                  "source": source} for kind, source, seconds in cells],
                       "metadata": {"papermill": {"duration": duration,
                                                  "start_time": "2030-01-02T03:04:05+00:00"}}})


def test_run_times_tool_writes_the_figures_and_nothing_else(tmp_path):
    (tmp_path / "notebooks" / "workshop").mkdir(parents=True)
    (tmp_path / "lessons").mkdir()
    cells = [("markdown", "## 1. Train", 0.0), ("code", "model = trained_model('x')", 90.0),
             ("markdown", "## 2. Time it", 0.0), ("code", "print(measure(model))", 30.0)]
    (tmp_path / "notebooks" / "00_x.ipynb").write_text(_notebook(12.34, cells))
    (tmp_path / "notebooks" / "workshop" / "00_x.ipynb").write_text(_notebook(125.0, cells))
    lesson = ("# 00\nWorkshop-size run: 1.0 s on 2 cores (AMD EPYC, 2020-01-01); the copy.\n"
              "Live: <!-- run-time 00 live -->?<!-- /run-time -->, longest "
              "<!-- run-time all longest -->?<!-- /run-time -->.\n")
    (tmp_path / "lessons" / "00_x.md").write_text(lesson)
    plan = "intro\n<!-- run-times:begin -->\nold\n<!-- run-times:end -->\nafter\n"
    (tmp_path / "lessons" / "README.md").write_text(plan)

    assert run_times.main(["--repo", str(tmp_path), "--check"]) == 1
    assert (tmp_path / "lessons" / "00_x.md").read_text() == lesson  # --check writes nothing
    assert run_times.main(["--repo", str(tmp_path), "--write"]) == 0
    text = (tmp_path / "lessons" / "00_x.md").read_text()
    assert "Workshop-size run: 2.1 min on 2 cores (AMD EPYC, 2030-01-02); the copy." in text
    # live = 125 s less the 90 s cell that reads a prepared result; the longest live cell: 30 s
    assert "<!-- run-time 00 live -->35.0 s<!-- /run-time -->" in text
    assert "<!-- run-time all longest -->30.0 s<!-- /run-time -->" in text
    readme = (tmp_path / "lessons" / "README.md").read_text()
    assert readme.startswith("intro\n<!-- run-times:begin -->\n| notebook |") and "old" not in readme
    assert "| 00_x | 12.3 s | 2.1 min | 35.0 s | 30.0 s: cell 3 (2. Time it) |" in readme
    assert readme.endswith("<!-- run-times:end -->\nafter\n")
    assert run_times.main(["--repo", str(tmp_path), "--check"]) == 0

    (tmp_path / "notebooks" / "workshop" / "00_x.ipynb").unlink()
    with pytest.raises(run_times.RunTimesError, match="segnas notebooks"):
        run_times.collect(tmp_path)


# --------------------------------------------------------------------------- (b) the plans
def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _plan_rows(heading: str) -> list[list[str]]:
    text = (LESSONS / "README.md").read_text(encoding="utf-8")
    part = text.split(f"## {heading}", 1)[1].split("\n## ", 1)[0]
    return [[cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in part.splitlines() if re.match(r"\|\s*\d+:\d\d-\d+:\d\d", line)]


def _lesson_minutes(number: str) -> int:
    return int(re.search(r"about (\d+) minutes", _lesson(number).splitlines()[2]).group(1))


def test_one_day_plan_gives_each_lesson_its_own_minutes_back_to_back():
    rows = _plan_rows("A 1-day workshop")
    assert rows, "no timetable under '## A 1-day workshop'"
    seen = []
    for previous, row in zip([None] + rows, rows):
        start, end = (_minutes(t) for t in row[0].split("-"))
        if previous is not None:
            assert start == _minutes(previous[0].split("-")[1]), f"gap or overlap before {row[0]}"
        if row[1]:  # a lesson block: "lesson + exercises" minutes
            lesson, exercises = (int(x) for x in re.fullmatch(r"(\d+) \+ (\d+)", row[3]).groups())
            assert lesson == _lesson_minutes(row[1]), \
                f"the 1-day plan gives lesson {row[1]} {lesson} min, the lesson says {_lesson_minutes(row[1])}"
            assert end - start == lesson + exercises, f"block {row[0]} is not {lesson} + {exercises} min"
            seen.append(row[1])
    assert seen == NUMBERS, "the 1-day plan covers every lesson once, in order"


def test_three_hour_plan_fills_three_hours():
    rows = _plan_rows("A 3-hour workshop")
    spans = [tuple(_minutes(t) for t in row[0].split("-")) for row in rows]
    assert spans[0][0] == 0 and spans[-1][1] == 180
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:])), "the 3-hour blocks are back to back"
    shown = " ".join(row[2] for row in rows)
    for core in ("Eq. 4", "rejection bias", "knapsack", "loop", "toy ProxylessNAS"):
        assert core in shown, f"the 3-hour plan leaves out {core}"


@pytest.mark.parametrize("number", ["00", "01", "02", "03", "04", "05"])
def test_lesson_minutes_are_the_sum_of_its_timing_notes(number):
    notes = _lesson(number).split("Timing:", 1)[1].split("\n- ", 1)[0]
    parts = [int(m) for m in re.findall(r"(\d+) min", notes)]
    assert sum(parts) == _lesson_minutes(number), \
        f"lesson {number}: the timing notes add up to {sum(parts)}, the header says {_lesson_minutes(number)}"


# --------------------------------------------------------------------------- (c) figures
def test_00_sixty_batches_of_eight():
    assert "after 60 batches of 8 small images" in _prose("00")
    for path in _copies("00").values():
        params = dict(re.findall(r"^(EPOCHS|TRAIN_LENGTH) = (\d+)", _parameters(path), re.MULTILINE))
        assert int(params["EPOCHS"]) * int(params["TRAIN_LENGTH"]) // 8 == 60
        assert f"after {params['EPOCHS']} epochs" in _printed(path, "trained_model(")


def _parameters(path: Path) -> str:
    """The source of the copy's parameters cell (its first code cell)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return "".join(next(c for c in cells if c["cell_type"] == "code")["source"])


def test_01_person_is_the_small_scene_class():
    assert 'small class is "person"' in _prose("01")
    for path in _copies("01").values():
        shares = {name: float(share) for name, share in
                  re.findall(r"^\s*\d+ (\w+)\s+[\d,]+\s+([\d.]+)%", _printed(path, "check_folder("),
                             re.MULTILINE)}
        assert set(shares) == {"sky", "ground", "person", "object"}
        assert min(shares, key=shares.get) == "person" and shares["object"] > 20.0


def test_02_parameters_and_the_hand_written_loop():
    lesson = _prose("02")
    assert "1,137,795 parameters" in lesson and "94 %" in lesson
    for path in _copies("02").values():
        table = _printed(path, "summary = summarize(model")
        assert "total                      1,137,795 parameters" in table
        extractor = int(re.search(r"global_feature_extractor\s+([\d,]+)", table).group(1).replace(",", ""))
        assert round(100 * extractor / 1_137_795) == 94
        first, last = (float(x) for x in re.search(r"mean of the first 5 ([\d.]+), of the last 5 ([\d.]+)",
                                                   _printed(path, "loss.backward()")).groups())
        assert last < first, f"{path}: the hand-written loop's loss did not fall"


def test_03_reference_difference_is_rounding_and_the_head_size():
    lesson = _prose("03")
    assert "3,221,538 parameters" in lesson and "246,356" in lesson and "122,880" in lesson
    assert "at most the level of float32 rounding" in lesson and "exactly 0" in lesson
    for path in _copies("03").values():
        printed = _printed(path, "reference_path")
        if "skipped" in printed:
            continue
        assert "parameters: 3,221,538" in printed
        difference = float(re.search(r"output: ([0-9.e+-]+)", printed).group(1))
        assert 0.0 <= difference < 1e-5, "lesson 03: 'at most the level of float32 rounding'"
    from segnas_lite.zoo import build_model
    model = build_model("lraspp_mobilenetv3_large", num_classes=2)
    head = sum(p.numel() for p in model.classifier.parameters())
    total = sum(p.numel() for p in model.parameters())
    assert head == 246_356 and round(100 * head / total) == 8
    assert model.classifier.cbr[0].weight.numel() == model.classifier.scale[1].weight.numel() == 122_880


def _op_rows(path: Path) -> dict[str, tuple[float, float]]:
    printed = _printed(path, "MFLOPs per ms at")
    return {name: (float(ms), float(rate)) for name, ms, rate in
            re.findall(r"^(\w+)\s+([\d.]+) ms\s+\(\s*([\d.]+) MFLOPs per ms", printed, re.MULTILINE)}


def test_04_se_ops_have_the_highest_rate_and_time_barely_grows_with_the_map():
    assert "reach the highest rate" in _prose("04")
    assert "no op takes anywhere near four times as long" in _prose("04")
    rows = {label: _op_rows(path) for label, path in _copies("04").items()}
    for label, ops in rows.items():
        assert len(ops) == 7, f"{label}: expected the seven ops"
        by_rate = sorted(ops, key=lambda name: ops[name][1], reverse=True)
        assert set(by_rate[:2]) == {"mbv3_3x3", "mbv3_5x5"}, f"{label}: {by_rate}"
        assert by_rate[-1] == "shuffle", f"{label}: {by_rate}"
    # each op timed again in the same run at half the size (1/4 of the FLOPs): per-call overhead
    # dominates, so 4x the FLOPs is far from 4x the time (compared within one run, never across)
    for label, path in _copies("04").items():
        ratios = dict(re.findall(r"^(\w+)\s+[\d.]+ ms.*: ([\d.]+)x the time for 4x the FLOPs$",
                                 _printed(path, "MFLOPs per ms at"), re.MULTILINE))
        assert len(ratios) == 7, f"{label}: the half-size column is missing"
        assert all(float(r) < 3.0 for r in ratios.values()), f"{label}: {ratios}"


def test_04_memory_ratio_straddles_seven():
    assert "above 7 in the quick copy" in _prose("04") and "below 7 in the workshop copy" in _prose("04")
    ratios = {label: float(re.search(r"all\s+[\d.]+ MiB saved for backward\s+\(([\d.]+) x one path\)",
                                     _printed(path, "saved_activation_mib(")).group(1))
              for label, path in _copies("04").items()}
    assert ratios["quick"] > 7.0 > ratios["workshop"], ratios


def test_05_calibration_beats_the_plain_sum_whatever_the_cpu():
    """The lesson words the plain sum's error as CPU-dependent (AMD: tens of percent, s < 1; Intel
    Xeon with AMX: under ten percent, s > 1) and claims only that calibration lowers it."""
    lesson = _prose("05")
    quote = "cannot be calculated by simple superposition"
    assert quote in lesson and "depends on the CPU" in lesson
    seeds = [p.read_text(encoding="utf-8") for p in (REPO.parent / "shared" / "seeds").glob("*.txt")]
    if seeds:  # the quote is the seed's own wording
        assert any(quote in text for text in seeds)
    for label, path in _copies("05").items():
        printed = _printed(path, "build_predictor(")
        in_place = re.search(r"in-place sum: Spearman [\d.]+, MAPE\s+([\d.]+)%\s+\(fixed part ([\d.]+) ms\)",
                             printed)
        calibrated = re.search(r"calibrated\s*: Spearman [\d.]+, MAPE\s+([\d.]+)%\s+\(fixed part ([\d.]+) ms, "
                               r"prior scale s = ([\d.]+)", printed)
        assert in_place and calibrated, f"{label}: the two lines the lesson points at are missing"
        assert float(calibrated.group(1)) < float(in_place.group(1)), f"{label}: calibration did not help"



def test_07_rank_figures_are_those_section_6_prints():
    """Lesson 07 quotes the rank study (``benchmarks/results/rank.json``) as notebook 07 prints it:
    every tau the lesson's rank paragraph gives is on the printed line of the score it names."""
    paragraph = _prose("07").split("**Does the super-net rank? Measured.**")[1].split("**What the")[0]
    quoted = {  # the lesson's wording -> (the score's name on the printed line, what it prints)
        "uniform warm-up ranks at about chance (tau +0.01)": ("uniform", "+0.01"),
        "reaches +0.38 [+0.08, +0.63]": ("sandwich2_distill +BN", "+0.38  [+0.08, +0.63]"),
        "agrees at +0.61 only": ("seed 0 vs seed 1", "+0.61"),
        "the noise ceiling, +0.79": ("noise ceiling", "+0.79"),
        "FLOPs alone (+0.62)": ("FLOPs", "+0.62"),
        "predicted latency alone (+0.66)": ("predicted latency", "+0.66"),
    }
    for label, path in _copies("07").items():
        rows = {m.group(1): m.group(2) for m in re.finditer(
            r"^  (\S.*?)\s+([+-]\d\.\d\d  \[[+-]\d\.\d\d, [+-]\d\.\d\d\])$",
            _printed(path, "rank_file = Path("), flags=re.M)}
        assert len(rows) >= 10, f"{label}: the rank table is not printed ({len(rows)} rows)"
        for phrase, (score, figure) in quoted.items():
            assert phrase in paragraph, f"lesson 07 no longer says {phrase!r}: update this test"
            assert rows.get(score, "").startswith(figure), f"{label}: {score} prints {rows.get(score)}"


def _points(x: float) -> str:
    """An mIoU difference in points, as the lesson writes it: +0.3, -0.1."""
    return f"{100 * x:+.1f}"


def test_07_verdict_figures_are_those_of_the_search_study():
    """Lesson 07's verdict paragraph quotes ``benchmarks/results/search.json`` (``python
    benchmarks/search.py --report``): every difference, interval, latency and budget it gives."""
    study = json.loads((REPO / "benchmarks" / "results" / "search.json").read_text(encoding="utf-8"))
    assert not study["partial"] and not study["busy"], "the study is partial or busy: do not quote it"
    paragraph = _prose("07").split("**What the benchmark found")[1].split("## What to look at")[0]
    rows = {(c["budget"], c["strategy"]): c for c in study["comparisons"]}

    def figure(budget: str, strategy: str) -> str:
        c = rows[(budget, strategy)]
        return f"{_points(c['difference'])} points [{_points(c['low'])}, {_points(c['high'])}]"

    def bare(budget: str, strategy: str) -> str:
        return figure(budget, strategy).replace(" points", "")

    budgets = study["budgets_ms"]
    gradient_06 = [r for r in study["rows"] if r["budget"] == "0.6" and r.get("strategy") == "gradient"
                   and r["kind"] == "searched"]
    mbv3_lead = sorted(-c["minus_mbv3_scaled"] * 100 for c in study["comparisons"] if c["budget"] == "0.3")
    expected = [
        f"{budgets['0.3']:.2f} and {budgets['0.6']:.2f} paced ms",
        f"gradient {figure('0.3', 'gradient')}",
        f"evolution {bare('0.3', 'evolution')}",
        f"random search {bare('0.3', 'random')}",
        f"ahead of every strategy by {mbv3_lead[0]:.1f} to {mbv3_lead[-1]:.1f} points",
        "gradient and random search edge above zero ({} points)".format(
            _points(rows[("0.3", "gradient")]["benchmark_clock"]["difference"])),
        "best random subnet reads {:.2f} against {:.2f}".format(
            max((r for r in study["rows"] if r["budget"] == "0.3" and r["kind"] == "random"),
                key=lambda r: r["miou"])["latency_ms"], budgets["0.3"]),
        f"gradient is {figure('0.6', 'gradient')} above random",
        f"{rows[('0.6', 'gradient')]['latency_gap_ms']:+.2f} paced ms over the random subnets",
        "({} and {} against {:.2f})".format(*(f"{r['latency_ms']:.2f}" for r in gradient_06), budgets["0.6"]),
    ]
    for phrase in expected:
        assert phrase in paragraph, f"lesson 07's verdict does not say {phrase!r} (search.json does)"
    assert rows[("0.6", "gradient")]["benchmark_clock"]["nets"] == 0 and "no gradient network is left" in paragraph
    assert not any(c["aim_met"] for c in study["comparisons"]) and "**no, not at this scale**" in paragraph


def test_08_says_whether_the_int8_step_ran_as_its_workshop_copy_shows():
    """Lesson 08's run line says "NNCF installed: the int8 step ran"; its workshop copy must show the
    int8 parity lines, not the message that NNCF is missing (the copies of 2026-12-04 did)."""
    ran = "NNCF installed: the int8 step ran" in _lesson("08")
    printed = _printed(_copies("08")["workshop"], "quantize_int8(")
    assert ran == ("runs int8 in" in printed), f"lesson 08 and its workshop copy disagree: {printed[:300]}"
    assert ran != ("int8 skipped" in printed)
