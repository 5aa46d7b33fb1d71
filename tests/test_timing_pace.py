"""The reference-paced clock (timing.pace): a drift of machine speed cancels, another process does
not, and paced numbers never mix with wall-clock ones."""
import time

import pytest
import torch

from segnas_lite import timing as T
from segnas_lite.nas.latency import build_table
from segnas_lite.nas.space import get_space
from segnas_lite.deploy.target import Target
from segnas_lite.timing import timer


def _loops_per_ms() -> float:
    start, n = time.perf_counter(), 200_000
    for _ in range(n):
        pass
    return n / ((time.perf_counter() - start) * 1e3)


LOOPS_PER_MS = _loops_per_ms()


class Machine:
    """A simulated machine whose speed the test changes: ``work(ms)`` runs about ``ms`` of CPU
    work times ``slowdown`` (real work, so another process on the cores slows net and reference
    alike, as pacing assumes)."""

    def __init__(self) -> None:
        self.slowdown = 1.0

    def work(self, ms: float) -> None:
        for _ in range(int(ms * self.slowdown * LOOPS_PER_MS)):
            pass

    def runner(self, ms: float) -> T.Runner:
        return T.Runner(lambda: self.work(ms), "sim", "f32", 1)


def test_paced_ms_do_not_move_when_the_whole_machine_slows_down():
    machine = Machine()
    net, reference = machine.runner(1.0), machine.runner(2.0)
    pacer = T.Pacer(reference, reference_ms=2.0, name="sim reference")
    wall, paced = [], []
    for slowdown in (1.0, 1.6):
        machine.slowdown = slowdown
        wall.append(T.time_runner(net, warmup=1, runs=15).median_ms)
        with T.pacing(pacer):
            timing = T.time_runner(net, warmup=1, runs=15)
        assert timing.clock == "paced" and len(timing.times_ms) == 15
        paced.append(timing.median_ms)
    assert wall[1] / wall[0] > 1.3  # the wall clock sees the slowdown (1.6x) ...
    assert paced[1] == pytest.approx(paced[0], rel=0.12)  # ... the paced clock does not
    assert paced[0] == pytest.approx(1.0, rel=0.3)  # about 1 ms of work against a 2 ms reference
    assert T.time_runner(net, warmup=1, runs=3).clock == "wall"  # outside the block again


def test_calibrate_measures_the_reference_and_describe_names_the_clock():
    machine = Machine()
    sleeper = T.Runner(lambda: time.sleep(0.0015), "sim", "f32", 1)  # never shorter than 1.5 ms
    pacer = T.Pacer.calibrate(sleeper, name="ref", blocks=3, runs=5)
    assert 1.5 <= pacer.reference_ms < 4.5
    assert pacer.describe()["clock"] == "paced" and pacer.describe()["reference"] == "ref"
    with pytest.raises(T.TimingError, match="reference_ms"):
        T.Pacer(machine.runner(1.0), reference_ms=0.0)


def test_a_reference_of_another_backend_or_thread_count_is_refused_and_blocks_do_not_nest():
    machine = Machine()
    pacer = T.Pacer(machine.runner(1.0), reference_ms=1.0)
    other = T.Runner(lambda: None, "openvino", "f32", 2)
    with T.pacing(pacer):
        with pytest.raises(T.TimingError, match="prepared like the network"):
            T.time_runner(other, warmup=0, runs=1)
        with pytest.raises(T.TimingError, match="do not nest"):
            with T.pacing(pacer):
                pass
    assert timer.active_pacer() is None
    relaxed = T.Pacer(machine.runner(1.0), reference_ms=1.0, cross_backend=True)
    with T.pacing(relaxed):  # a comparison across runtimes, asked for by name
        assert T.time_runner(other, warmup=0, runs=1).clock == "paced"
    assert relaxed.describe()["cross_backend"] is True


def test_the_speed_probes_read_the_wall_clock_inside_a_pacing_block():
    machine = Machine()
    pacer = T.Pacer(machine.runner(2.0), reference_ms=20.0)  # paced ms: 10x wall ms here
    probe = machine.runner(1.0)
    with T.pacing(pacer):
        with timer.wall_clock():
            assert timer.active_pacer() is None
            assert T.time_runner(probe, warmup=0, runs=2).clock == "wall"
        assert timer.active_pacer() is pacer
        with T.LoadMonitor(warn=False,
                           ov_probe=lambda: T.time_runner(probe, warmup=0, runs=2).median_ms) as m:
            pass
    assert m.report.paced
    assert m.report.ov_probe_before_ms < 5.0  # wall ms (about 1), not paced ones (about 10)


def test_a_paced_run_is_busy_only_when_another_process_competes():
    drifted = dict(load_before=0.5, load_after=0.5, seconds=10.0, steal_cores=0.4,
                   probe_before_ms=0.2, probe_after_ms=0.3)
    assert T.LoadReport(other_cores=0.0, **drifted).busy  # wall clock: steal and drift count
    assert not T.LoadReport(other_cores=0.0, paced=True, **drifted).busy  # paced: they cancel
    assert T.LoadReport(other_cores=0.8, paced=True, **drifted).busy  # a competitor does not


def test_a_paced_latency_table_gets_its_own_cache_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGNAS_CACHE", str(tmp_path))
    space, target = get_space("tiny"), Target("torch", "f32", 1, 32)
    common = dict(target=target, warmup=0, runs=1, rounds=1, quiet=True)
    wall = build_table(space, **common)
    reference = T.Runner.torch(torch.nn.Conv2d(3, 8, 3), (1, 3, 32, 32), threads=1)
    with T.pacing(T.Pacer(reference, reference_ms=1.0, name="conv")):
        paced = build_table(space, **common)
        assert build_table(space, **common).meta["key"] == paced.meta["key"]  # read back
    assert paced.meta["key"] != wall.meta["key"]
    assert paced.meta["clock"]["clock"] == "paced" and wall.meta["clock"] == {"clock": "wall"}
    assert len(list((tmp_path / "latency").glob("*.json"))) == 2
