"""WS /terminal (issue 15): a login shell on a PTY over a WebSocket that survives the socket,
driven with python3-websockets; and stdin/resize messages over the process WebSocket."""
import asyncio
import json
import os
import time

import pytest

from conftest import Agent, get, start, wait_done

websockets = pytest.importorskip("websockets")

T = 20   # seconds any single wait may take (generous: two cores shared by many agents)


def quiet_home(tmp):
    """A HOME without dotfiles: a login shell then starts in milliseconds (a developer's
    .bashrc may run pyenv and the like for seconds, times fifty)."""
    home = tmp / "home"
    home.mkdir(exist_ok=True)
    return {"HOME": str(home)}


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("terminal")
    a = Agent(tmp=tmp, env=quiet_home(tmp))
    yield a
    rc = a.stop()
    assert rc == 0, f"agent exited {rc}; log:\n{a.log()[-3000:]}"
    assert a.sanitizer_report() is None, a.sanitizer_report()


def wait_child(agent, shell_pid, cmdline):
    """Polls GET /processes until the shell has a child running cmdline."""
    deadline = time.monotonic() + T
    while True:
        procs = agent.get("/processes").json()["processes"]
        if any(p["ppid"] == shell_pid and p["cmdline"] == cmdline for p in procs):
            return
        assert time.monotonic() < deadline, f"no child {cmdline!r} of {shell_pid}"
        time.sleep(0.05)


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 120))


async def connect(agent, query=""):
    return await websockets.connect(
        f"ws://127.0.0.1:{agent.port}/terminal{query}",
        extra_headers={"Authorization": "Bearer " + agent.token()}, max_size=None,
        open_timeout=T)


async def recv(ws):
    return json.loads(await asyncio.wait_for(ws.recv(), T))


async def session(ws):
    m = await recv(ws)
    assert m["type"] == "session" and m["session"].startswith("proc_"), m
    return m["session"]


async def read_until(ws, text, seen=""):
    """Output until text shows up (terminal output is checked as a whole: a marker may be
    split across messages). Returns everything read."""
    while text not in seen:
        m = await recv(ws)
        assert m["type"] == "output", (m, seen[-500:])
        seen += m["data"]
    return seen


async def send(ws, data):
    await ws.send(json.dumps({"type": "input", "data": data}))


# ---- the shell ----

def test_shell_answers(agent):
    async def go():
        ws = await connect(agent)
        sid = await session(ws)
        await send(ws, "echo marker-$((40+2)); echo $TERM; tty\r")
        out = await read_until(ws, "marker-42")
        out = await read_until(ws, "/dev/pts/", out)
        assert "xterm-256color" in out
        rec = get(agent, sid)
        assert rec["status"] == "running" and rec["name"] == "terminal"
        await ws.close()
        r = agent.post(f"/execute/kill/{sid}", {"signal": "SIGKILL"})
        assert r.status == 200
        wait_done(agent, sid)
    run(go())


def test_job_control_ctrl_c(agent):
    """sleep 100 in the foreground, then Ctrl-C: the job ends, the prompt is back."""
    async def go():
        ws = await connect(agent)
        sid = await session(ws)
        await send(ws, "echo ready-$((1+1))\r")
        await read_until(ws, "ready-2")
        await send(ws, "sleep 100; echo slept-$((3*3))\r")
        wait_child(agent, get(agent, sid)["pid"], "sleep 100")
        await send(ws, "\x03")
        await send(ws, "echo back-$((2*3))\r")
        out = await read_until(ws, "back-6")
        assert "slept-9" not in out, out   # ^C ended the whole line, not just sleep
        await send(ws, "exit\r")
        m = await recv_exit(ws)
        assert m["code"] == 0 or m["code"] == 130, m
        rec = wait_done(agent, sid)
        assert rec["reason"] in ("exit", "signal"), rec
    run(go())


async def recv_error(ws):
    """The next error message (the shell may still be drawing its prompt meanwhile)."""
    while True:
        m = await recv(ws)
        if m["type"] == "error":
            return m
        assert m["type"] == "output", m


async def recv_exit(ws):
    while True:
        m = await recv(ws)
        if m["type"] == "exit":
            return m
        assert m["type"] == "output", m


def test_resize(agent):
    async def go():
        ws = await connect(agent, "?cols=90&rows=20")
        sid = await session(ws)
        await send(ws, "stty size\r")
        await read_until(ws, "20 90")
        await ws.send(json.dumps({"type": "resize", "cols": 132, "rows": 43}))
        await send(ws, "stty size\r")
        await read_until(ws, "43 132")
        await ws.send(json.dumps({"type": "resize", "cols": 0, "rows": 43}))
        m = await recv_error(ws)
        assert m["code"] == "INVALID_REQUEST" and "cols" in m["error"], m
        await ws.send("not json")
        m = await recv_error(ws)
        assert m["code"] == "INVALID_JSON", m
        await send(ws, "exit 3\r")
        m = await recv_exit(ws)
        assert m["code"] == 3, m
        rec = wait_done(agent, sid)
        assert rec["status"] == "failed" and rec["exit_code"] == 3 and rec["reason"] == "exit"
    run(go())


def test_exit_ends_the_session(agent):
    async def go():
        ws = await connect(agent)
        sid = await session(ws)
        await send(ws, "exit\r")
        m = await recv_exit(ws)
        assert m == {"type": "exit", "code": 0}
        await asyncio.wait_for(ws.wait_closed(), T)
        assert ws.close_code == 1000
        rec = wait_done(agent, sid)
        assert rec["status"] == "completed"
        # the session is gone: reattaching is refused
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            await connect(agent, f"?session={sid}")
        assert e.value.status_code == 404
    run(go())


def test_reattach_replays_what_was_missed(agent):
    async def go():
        ws = await connect(agent)
        sid = await session(ws)
        await send(ws, "echo first-$((5+5))\r")
        await read_until(ws, "first-10")
        # output made while nobody is attached: it waits for a file made after the close
        go_file = os.path.join(agent.workdir, f"go-{sid}")
        await send(ws, f"while [ ! -e {go_file} ]; do sleep 0.05; done; echo away-$((6*7))\r")
        await ws.close()   # the input frame came first: the shell has the line
        open(go_file, "w").close()
        ws2 = await connect(agent, f"?session={sid}&cols=100&rows=30")
        assert await session(ws2) == sid
        out = await read_until(ws2, "away-42")
        assert "first-10" not in out   # what the first socket got is not sent again
        await send(ws2, "stty size\r")
        await read_until(ws2, "30 100")
        # a second client takes the session over; the first is closed
        ws3 = await connect(agent, f"?session={sid}")
        assert await session(ws3) == sid
        await asyncio.wait_for(ws2.wait_closed(), T)
        await send(ws3, "exit\r")
        await recv_exit(ws3)
    run(go())


def test_dropped_socket_then_reattach(agent):
    """The TCP connection dies without a close handshake."""
    async def go():
        ws = await connect(agent)
        sid = await session(ws)
        await send(ws, "echo up\r")
        await read_until(ws, "up")
        ws.transport.abort()
        ws2 = await connect(agent, f"?session={sid}")
        assert await session(ws2) == sid
        await send(ws2, "echo still-$((9+9))\r")
        await read_until(ws2, "still-18")
        await send(ws2, "exit\r")
        await recv_exit(ws2)
    run(go())


def test_shell_that_exits_while_unattached(agent):
    """The exit is kept for the client that comes back: replay, then the exit message."""
    async def go():
        ws = await connect(agent)
        sid = await session(ws)
        go_file = os.path.join(agent.workdir, f"bye-{sid}")
        await send(ws, f"while [ ! -e {go_file} ]; do sleep 0.05; done; echo bye-$((3*3)); exit 7\r")
        await ws.close()
        open(go_file, "w").close()
        rec = wait_done(agent, sid)
        assert rec["exit_code"] == 7 and rec["status"] == "failed", rec
        ws2 = await connect(agent, f"?session={sid}")
        assert await session(ws2) == sid
        out = await read_until(ws2, "bye-9")
        m = await recv_exit(ws2)
        assert m == {"type": "exit", "code": 7}, (m, out)
        await asyncio.wait_for(ws2.wait_closed(), T)
    run(go())


def test_unattached_session_is_hung_up(start_agent, tmp_path):
    a = start_agent("--terminal-keep", "1", "--grace", "1", env=quiet_home(tmp_path))

    async def go():
        ws = await connect(a)
        sid = await session(ws)
        await send(ws, "echo here\r")
        await read_until(ws, "here")
        await ws.close()
        rec = wait_done(a, sid)
        assert rec["reason"] in ("killed", "signal") and rec["exit_code"] in (129, 137), rec
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
            await connect(a, f"?session={sid}")
        assert e.value.status_code == 404
    run(go())


def test_fifty_terminals(agent):
    async def one(i):
        ws = await connect(agent)
        sid = await session(ws)
        await send(ws, f"echo term-$(({i}*1000+7))\r")
        await read_until(ws, f"term-{i * 1000 + 7}")
        return ws, sid

    async def go():
        pairs = await asyncio.gather(*(one(i) for i in range(50)))
        assert len({sid for _, sid in pairs}) == 50
        await asyncio.gather(*(send(ws, "exit\r") for ws, _ in pairs))
        codes = await asyncio.gather(*(recv_exit(ws) for ws, _ in pairs))
        assert all(m["code"] == 0 for m in codes)
        for _, sid in pairs:
            assert wait_done(agent, sid)["status"] == "completed"
    run(go())


def test_input_nobody_reads_is_bounded(agent):
    """A foreground job that never reads: the terminal's buffer fills, then 1 MiB waits in
    the agent, then input is refused with an error message; the agent stays responsive."""
    async def go():
        ws = await connect(agent)
        sid = await session(ws)
        await send(ws, "stty -icanon; sleep 1000\r")
        wait_child(agent, get(agent, sid)["pid"], "sleep 1000")
        chunk = "k" * (64 << 10)
        error = None
        for _ in range(40):   # 2.5 MiB: more than the terminal and the queue take
            await send(ws, chunk)
            try:
                while True:
                    m = json.loads(await asyncio.wait_for(ws.recv(), 0.05))
                    if m["type"] == "error":
                        error = m
                        break
            except asyncio.TimeoutError:
                pass
            if error:
                break
        assert error and error["code"] == "STDIN_FULL", error
        assert agent.get("/health", token=False).status == 200
        assert agent.post(f"/execute/kill/{sid}", {"signal": "SIGKILL"}).status == 200
        wait_done(agent, sid)
    run(go())


def test_not_an_upgrade_and_bad_queries(agent):
    r = agent.get("/terminal")
    assert r.status == 426 and r.header("upgrade") == "websocket", r

    async def go():
        for q in ("?session=proc_0000000000000000", "?cols=0", "?rows=abc", "?cwd=/no/such/dir"):
            with pytest.raises(websockets.exceptions.InvalidStatusCode) as e:
                await connect(agent, q)
            assert e.value.status_code in (400, 404), q
    run(go())


def test_cwd_and_binary_input(agent, tmp_path):
    async def go():
        ws = await connect(agent, f"?cwd={tmp_path}")
        await session(ws)
        await ws.send(b"pwd\r")   # a binary frame is raw keystrokes
        await read_until(ws, str(tmp_path))
        await send(ws, "exit\r")
        await recv_exit(ws)
    run(go())


# ---- the process WebSocket: stdin, stdin_close, resize, signal ----

async def stream(agent, pid):
    return await websockets.connect(
        f"ws://127.0.0.1:{agent.port}/execute/processes/{pid}/stream",
        extra_headers={"Authorization": "Bearer " + agent.token()}, open_timeout=T)


async def until_exit(ws):
    out, errors = "", []
    while True:
        m = json.loads(await asyncio.wait_for(ws.recv(), T))
        if m.get("type") == "stdout":
            out += m["data"]
        elif m.get("type") == "error":
            errors.append(m)
        elif m.get("type") == "exit":
            return out, errors, m


def test_process_websocket_stdin(agent):
    pid = start(agent, {"command": "cat", "stdin": True})["process_id"]

    async def go():
        ws = await stream(agent, pid)
        await ws.send(json.dumps({"type": "stdin", "data": "over the socket\n"}))
        await ws.send(json.dumps({"type": "stdin", "data": "YmFzZTY0", "encoding": "base64"}))
        await ws.send(json.dumps({"type": "stdin_close"}))
        out, errors, m = await until_exit(ws)
        assert out == "over the socket\nbase64" and not errors, (out, errors)
    run(go())
    assert wait_done(agent, pid)["status"] == "completed"


def test_process_websocket_resize_and_signal(agent):
    pid = start(agent, {"command": "trap 'stty size' WINCH; echo ready; while :; do sleep 0.05; done",
                        "pty": True})["process_id"]

    async def go():
        ws = await stream(agent, pid)
        out = ""
        while "ready" not in out:
            m = json.loads(await asyncio.wait_for(ws.recv(), T))
            out += m.get("data", "") if m.get("type") == "stdout" else ""
        await ws.send(json.dumps({"type": "resize", "cols": 77, "rows": 22}))
        while "22 77" not in out:
            m = json.loads(await asyncio.wait_for(ws.recv(), T))
            assert m.get("type") == "stdout", m
            out += m["data"]
        await ws.send(json.dumps({"type": "stdin", "data": "!!!!", "encoding": "base64"}))
        await ws.send(json.dumps({"type": "signal", "signal": "SIGKILL"}))
        _, errors, m = await until_exit(ws)
        assert errors and errors[0]["code"] == "INVALID_REQUEST", errors
    run(go())
    rec = wait_done(agent, pid)
    assert rec["status"] == "failed"
