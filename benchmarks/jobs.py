"""Independent pieces of a long benchmark run side by side, each in its own process.

Training a small net on 2 cores uses them badly. ``python benchmarks/parallel_training.py
--rounds 4`` (a seed-space child, batch 8 at 160 px; AMD EPYC VM, 2 cores, 2026-12-05) measured one
worker with 2 torch threads at 7.5 steps per second (124-142 ms per step), and two 1-thread workers
side by side at 10.6 together (181-207 ms each): 1.42 times the throughput, which is what
``search.py --jobs 2`` gives its retrainings. Only pieces that time nothing may run this way: a
latency measured beside a training is busy.

``Job`` is what a worker runs: a module-level function and its arguments (both picklable), and what
the main process does with the result (``record``, e.g. ``state.put``): only the main process
writes the state file, so two pieces never overwrite each other's record.

Each job gets its own process, started with ``spawn`` (a fork after torch has started its threads
may hang), with ``cores // jobs`` torch threads. Workers ignore Ctrl-C; the main process terminates
them when it is interrupted (an interrupted training resumes from its last epoch on the next run).
A worker that dies without a result is a ``WorkerDiedError``, never a silent hang.
"""
from __future__ import annotations

import multiprocessing
import os
import signal
import warnings
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any, Callable


class WorkerDiedError(RuntimeError):
    """A worker process ended without sending its job's result (killed, out of memory, or it could
    not import the job's function)."""


@dataclass(frozen=True)
class Job:
    """``fn(*args)`` in a worker; ``record(result)`` in the main process."""

    fn: Callable[..., Any]
    args: tuple
    record: Callable[[Any], Any]


def worker_threads(jobs: int) -> int:
    """torch threads per worker: the cores this process may use, shared out."""
    return max(1, len(os.sched_getaffinity(0)) // max(1, jobs))


def _work(fn, args, threads: int, filters: list, pipe) -> None:
    """A worker's whole life: one job, its result (or its exception) sent back through ``pipe``.
    ``filters``: the main process's warning filters (a warning it silences stays silent here)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides, and terminates us
    warnings.filters[:] = filters
    import torch
    torch.set_num_threads(threads)
    try:
        pipe.send(("ok", fn(*args)))
    except Exception as exc:  # noqa: BLE001 - sent to the main process, which raises it
        pipe.send(("error", exc))


class ParallelJobs:
    """At most ``jobs`` ``Job``s at once, one spawned process each (``with`` ends them all when
    the block is left with an error, Ctrl-C included). ``jobs=1`` runs one worker with every core
    (parallel_training.py's baseline; search.py runs its pieces in process instead)."""

    def __init__(self, jobs: int) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {jobs}")
        self.jobs = jobs
        self._context = multiprocessing.get_context("spawn")
        self._running: dict[str, tuple[Job, Any, Any]] = {}  # name -> (job, process, pipe end)

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def full(self) -> bool:
        return self.running >= self.jobs

    def submit(self, name: str, job: Job) -> None:
        receive, send = self._context.Pipe(duplex=False)
        process = self._context.Process(target=_work, name=f"job {name}", daemon=True,
                                        args=(job.fn, job.args, worker_threads(self.jobs),
                                              list(warnings.filters), send))
        process.start()
        send.close()  # ours closed: the pipe reads end-of-file when the worker dies
        self._running[name] = (job, process, receive)

    def wait_one(self) -> str:
        """Block until a running job ends; record its result and return its name. A job that
        raised raises here; a worker that died without a result raises ``WorkerDiedError``."""
        if not self._running:
            raise RuntimeError("no job is running")
        ready = wait([pipe for _, _, pipe in self._running.values()])
        name = next(n for n, (_, _, pipe) in self._running.items() if pipe in ready)
        job, process, pipe = self._running.pop(name)
        try:
            status, value = pipe.recv()
        except EOFError:
            process.join()
            raise WorkerDiedError(
                f"the worker of {name!r} ended without a result (exit code {process.exitcode}); "
                "its piece stays pending: run again") from None
        finally:
            pipe.close()
        process.join()
        if status == "error":
            raise value
        job.record(value)
        return name

    def terminate(self) -> None:
        for _, process, pipe in self._running.values():
            process.terminate()
            process.join()
            pipe.close()
        self._running.clear()

    def __enter__(self) -> "ParallelJobs":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        self.terminate()  # empty unless the block was left early
