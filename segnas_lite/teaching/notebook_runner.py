"""Executing the notebooks (``segnas notebooks``, the notebook tests) without the widget-cell stall.

papermill runs a notebook through nbclient, which waits for each cell's reply with one long poll of
the kernel's ZeroMQ sockets (``get_msg(timeout=<cell timeout>)``). After a cell that displays a
widget, that poll sometimes misses the reply that has already arrived and sleeps until the cell
timeout runs out: seen here as a 0.5 s widget cell that took 300 s, with the kernel idle (public
report: jupyter/nbclient issue 312). A new poll sees the waiting message at once, so the fix is to
poll in short slices until the deadline: a missed wake-up then costs at most ``POLL_SLICE_S``.

``execute_notebook`` is papermill's, with a kernel manager whose client polls that way.
"""
from __future__ import annotations

import os
import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import DottedObjectName, Type

POLL_SLICE_S = 0.2


class SlicedPollChannel(AsyncZMQSocketChannel):
    """A socket channel whose ``get_msg`` polls in slices of ``POLL_SLICE_S`` up to ``timeout``."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            step = POLL_SLICE_S if left is None else max(0.0, min(POLL_SLICE_S, left))
            try:
                return await super().get_msg(timeout=step)
            except Empty:
                if left is not None and left <= POLL_SLICE_S:
                    raise


class SteadyKernelClient(AsyncKernelClient):
    """The async kernel client with sliced polling on the shell and IOPub channels."""

    shell_channel_class = Type(SlicedPollChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(SlicedPollChannel)  # type: ignore[assignment]


class SteadyKernelManager(AsyncKernelManager):
    """Starts kernels whose clients are ``SteadyKernelClient``."""

    client_class = DottedObjectName("segnas_lite.teaching.notebook_runner.SteadyKernelClient")
    client_factory = Type(SteadyKernelClient)  # what ``client()`` builds; must match client_class


def execute_notebook(path: str | os.PathLike, out: str | os.PathLike, *, cwd: str | os.PathLike,
                     cell_timeout: int, parameters: dict | None = None) -> Any:
    """Run ``path`` with papermill into ``out`` (python3 kernel, working directory ``cwd``); a cell
    running longer than ``cell_timeout`` seconds fails the run (nbclient's ``CellTimeoutError``)."""
    import papermill
    return papermill.execute_notebook(
        str(path), str(out), parameters=parameters or {}, kernel_name="python3", cwd=str(cwd),
        progress_bar=False, execution_timeout=cell_timeout,
        kernel_manager_class="segnas_lite.teaching.notebook_runner.SteadyKernelManager")
