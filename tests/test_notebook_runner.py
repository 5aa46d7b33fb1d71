"""The notebook runner: sliced polling (no widget-cell stall) and cell timeouts that still fire."""
import asyncio
import time
from queue import Empty

import nbformat
import pytest
import zmq
import zmq.asyncio
from jupyter_client.session import Session

from segnas_lite.teaching import notebook_runner as R


def channel_pair():
    context = zmq.asyncio.Context()
    receiver, sender = context.socket(zmq.PAIR), context.socket(zmq.PAIR)
    port = receiver.bind_to_random_port("tcp://127.0.0.1")
    sender.connect(f"tcp://127.0.0.1:{port}")
    session = Session()
    return context, R.SlicedPollChannel(receiver, session), sender, session


def test_sliced_poll_returns_a_message_that_arrives_mid_wait_and_times_out_otherwise():
    async def scenario():
        context, channel, sender, session = channel_pair()
        try:
            with pytest.raises(Empty):
                started = time.monotonic()
                await channel.get_msg(timeout=0.5)
            assert 0.4 <= time.monotonic() - started < 1.5  # the deadline holds, sliced or not

            async def send_later():
                await asyncio.sleep(0.5)
                await sender.send_multipart(session.serialize(session.msg("ping", {"n": 1})))

            task = asyncio.ensure_future(send_later())
            started = time.monotonic()
            msg = await channel.get_msg(timeout=None)  # blocks in slices until it comes
            assert msg["header"]["msg_type"] == "ping" and msg["content"] == {"n": 1}
            assert time.monotonic() - started < 2.0
            await task
        finally:
            context.destroy(linger=0)

    asyncio.run(scenario())


def notebook(tmp_path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, path)
    return path


def test_widget_cells_run_and_a_slow_cell_still_times_out(tmp_path, monkeypatch):
    calls = []
    original = R.SlicedPollChannel.get_msg

    async def counted(self, timeout=None):
        calls.append(timeout)
        return await original(self, timeout)

    monkeypatch.setattr(R.SlicedPollChannel, "get_msg", counted)
    path = notebook(tmp_path, "import ipywidgets\nipywidgets.IntSlider(3)", "print(6 * 7)")
    out = R.execute_notebook(path, tmp_path / "out.ipynb", cwd=tmp_path, cell_timeout=60)
    assert out.cells[1].outputs[0]["text"] == "42\n"
    assert calls, "papermill's client must read the kernel through the sliced-poll channel"
    slow = notebook(tmp_path, "import time\ntime.sleep(30)")
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        R.execute_notebook(slow, tmp_path / "slow.ipynb", cwd=tmp_path, cell_timeout=3)
    assert time.monotonic() - started < 25
