"""Live streams (API.md "Live streams"): SSE with curl -N, WebSocket with a real client
library (python3-websockets) and with hostile raw frames, resume by offset, gaps, the SDK's
WS /execute/stream, the ?wait= long poll, and what a reader that never reads costs."""
import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import get, start, wait_done
from streams_util import (FrameReader, SSEReader, eof_after, frame, poll_until, rss_kb,
                          sse_events, upgrade)

websockets = pytest.importorskip("websockets")


def curl_sse(agent, path, headers=(), timeout=30):
    args = ["curl", "-sN", "--max-time", str(timeout), "-H", "Authorization: Bearer " + agent.token()]
    for h in headers:
        args += ["-H", h]
    out = subprocess.run(args + [f"http://{agent.addr}{path}"], capture_output=True, timeout=timeout + 5)
    return out.stdout.decode()


def joined(events, name):
    return "".join(e["data"]["data"] for e in events if e.get("event") == name)


def ws_url(agent, path):
    return f"ws://{agent.addr}{path}"


def ws_collect(agent, path, send=None, timeout=120):
    """Every message (JSON) until the server closes; and the close code."""
    async def run():
        async with websockets.connect(ws_url(agent, path), max_size=None,
                                      extra_headers={"Authorization": "Bearer " + agent.token()}) as ws:
            if send is not None:
                await ws.send(json.dumps(send))
            msgs = []
            async for m in ws:
                msgs.append(json.loads(m))
                if msgs[-1]["type"] == "complete":
                    break   # as the SDK does: complete is repeated until the client closes
            return msgs, ws.close_code
    return asyncio.run(asyncio.wait_for(run(), timeout))


# ---- SSE ----

def test_sse_follows_a_process_to_its_exit_with_curl(agent):
    p = start(agent, {"command": "for i in 1 2 3; do echo out $i; echo err $i >&2; sleep 0.1; done; exit 3"})
    text = curl_sse(agent, f"/execute/processes/{p['process_id']}/stream")
    ev = sse_events(text)
    assert ev[-1]["event"] == "exit"
    assert ev[-1]["data"]["exit_code"] == 3 and ev[-1]["data"]["status"] == "failed"
    assert "stdout" not in ev[-1]["data"]   # the record without output: it was streamed
    assert joined(ev, "stdout") == "out 1\nout 2\nout 3\n"
    assert joined(ev, "stderr") == "err 1\nerr 2\nerr 3\n"
    # offsets are contiguous per stream, ids are the offsets after each event
    for name, idx in (("stdout", 0), ("stderr", 1)):
        at = 0
        for e in ev:
            if e.get("event") == name:
                assert e["data"]["offset"] == at
                at += len(e["data"]["data"].encode())
                assert int(e["id"].split(",")[idx]) == at


def test_sse_head_and_answer_headers(agent):
    p = start(agent, {"command": "echo x"})
    wait_done(agent, p["process_id"])
    s = SSEReader(agent, f"/execute/processes/{p['process_id']}/stream")
    assert s.resp.status == 200
    assert s.resp.header("content-type").startswith("text/event-stream")
    assert s.resp.header("content-length") is None
    assert s.resp.header("x-request-id")
    assert s.next()["event"] == "stdout"
    assert s.next()["event"] == "exit"
    assert s.next() is None   # the response ends with the exit event
    s.close()


def test_sse_resume_by_last_event_id_has_no_loss_and_no_repeat(agent):
    p = start(agent, {"command": "i=0; while [ $i -lt 400 ]; do echo line $i; echo e$i >&2; i=$((i+1)); sleep 0.002; done"})
    pid = p["process_id"]
    got = {"stdout": "", "stderr": ""}
    last = None
    for _ in range(5000):   # reconnect after every two events until the exit event
        s = SSEReader(agent, f"/execute/processes/{pid}/stream", {"Last-Event-ID": last} if last else None)
        done = False
        for _ in range(2):
            e = s.next()
            if e is None or e["event"] == "exit":
                done = True
                break
            got[e["event"]] += e["data"]["data"]
            last = e["id"]
        s.close()
        if done:
            break
    assert done
    rec = wait_done(agent, pid)
    assert got["stdout"] == rec["stdout"] and got["stderr"] == rec["stderr"]
    assert got["stdout"].count("\n") == 400


def test_sse_offset_query_resumes_both_streams(agent):
    p = start(agent, {"command": "printf abcdef; printf ghijkl >&2"})
    wait_done(agent, p["process_id"])
    ev = sse_events(curl_sse(agent, f"/execute/processes/{p['process_id']}/stream?offset=4"))
    assert joined(ev, "stdout") == "ef" and joined(ev, "stderr") == "kl"
    ev = sse_events(curl_sse(agent, f"/execute/processes/{p['process_id']}/stream?offset=99"))
    assert joined(ev, "stdout") == "" and ev[-1]["event"] == "exit"


def test_sse_gap_when_the_reader_fell_behind_the_kept_bytes(start_agent):
    a = start_agent("--output-limit", "4096")
    p = start(a, {"command": "head -c 10000 /dev/zero | tr '\\0' x; echo"})
    wait_done(a, p["process_id"])
    ev = sse_events(curl_sse(a, f"/execute/processes/{p['process_id']}/stream"))
    gaps = [e for e in ev if e.get("event") == "gap"]
    assert len(gaps) == 1
    g = gaps[0]["data"]
    assert g["stream"] == "stdout" and g["gap"] == 10001 - 4096 and g["offset"] == 10001 - 4096
    assert len(joined(ev, "stdout")) == 4096
    assert ev[-1]["event"] == "exit"


def test_sse_errors(agent):
    r = agent.get("/execute/processes/proc_0000000000000000/stream")
    assert r.status == 404 and r.json()["code"] == "PROCESS_NOT_FOUND"
    p = start(agent, {"command": "true"})
    for q in ("?offset=-1", "?offset=abc", "?offset=1,x"):
        r = agent.get(f"/execute/processes/{p['process_id']}/stream{q}")
        assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST", q
    r = agent.get(f"/execute/processes/{p['process_id']}/stream", headers={"Last-Event-ID": "x,y"})
    assert r.status == 400
    r = agent.get(f"/execute/processes/{p['process_id']}/stream", token=False)
    assert r.status == 401


def test_many_readers_of_one_process_get_the_same_bytes(agent):
    p = start(agent, {"command": "i=0; while [ $i -lt 200 ]; do echo $i; i=$((i+1)); done; sleep 0.2"})
    readers = [SSEReader(agent, f"/execute/processes/{p['process_id']}/stream") for _ in range(6)]
    outs = []
    for r in readers:
        text = ""
        while True:
            e = r.next()
            if e is None or e["event"] == "exit":
                break
            text += e["data"]["data"]
        r.close()
        outs.append(text)
    rec = wait_done(agent, p["process_id"])
    assert all(o == rec["stdout"] for o in outs)


def test_utf8_split_across_writes_is_never_two_replacement_chars(agent):
    # the euro sign's three bytes in three writes, apart in time
    p = start(agent, {"command": "printf '\\342'; sleep 0.2; printf '\\202'; sleep 0.2; printf '\\254\\n'"})
    ev = sse_events(curl_sse(agent, f"/execute/processes/{p['process_id']}/stream"))
    assert joined(ev, "stdout") == "\u20ac\n"


# ---- WebSocket: process stream ----

def test_ws_process_stream_with_a_real_client(agent):
    p = start(agent, {"command": "echo one; sleep 0.2; echo two >&2; exit 2"})
    msgs, code = ws_collect(agent, f"/execute/processes/{p['process_id']}/stream")
    assert code == 1000
    assert [m["type"] for m in msgs][-1] == "exit"
    assert msgs[-1]["exit_code"] == 2
    assert "".join(m["data"] for m in msgs if m["type"] == "stdout") == "one\n"
    assert "".join(m["data"] for m in msgs if m["type"] == "stderr") == "two\n"


def test_ws_signal_message_kills_the_process(agent):
    p = start(agent, {"command": "sleep 60"})
    msgs, code = ws_collect(agent, f"/execute/processes/{p['process_id']}/stream",
                            send={"type": "signal", "signal": "SIGKILL"})
    assert msgs[-1]["type"] == "exit" and msgs[-1]["reason"] == "killed"


def test_ws_handshake_errors(agent):
    p = start(agent, {"command": "true"})
    path = f"/execute/processes/{p['process_id']}/stream"
    s, r, _ = upgrade(agent, path, {"Sec-WebSocket-Version": "8"})
    assert r.status == 426 and r.header("sec-websocket-version") == "13"
    s.close()
    s, r, _ = upgrade(agent, path, {"Sec-WebSocket-Key": "short"})
    assert r.status == 400
    s.close()
    s, r, _ = upgrade(agent, path, {"Authorization": None})
    assert r.status == 401
    s.close()
    r = agent.get("/execute/stream")
    assert r.status == 426 and r.json()["code"] == "INVALID_REQUEST"


# ---- WS /execute/stream (the SDK's runCodeStream) ----

def test_execute_stream_sdk_shape(agent):
    msgs, code = ws_collect(agent, "/execute/stream", send={
        "type": "execute", "code": "import sys\nprint('a')\nprint('b', file=sys.stderr)\nsys.exit(4)",
        "language": "python", "timeout": 30, "workdir": agent.workdir, "env": {"X": "1"}})
    types = [m["type"] for m in msgs]
    assert types[-2:] == ["result", "complete"]
    res, comp = msgs[-2], msgs[-1]
    assert res["exit_code"] == 4 and comp["exit_code"] == 4 and comp["success"] is False
    assert comp["execution_time"] == res["execution_time"] >= 0
    assert "".join(m["data"] for m in msgs if m["type"] == "stdout") == "a\n"
    assert "".join(m["data"] for m in msgs if m["type"] == "stderr") == "b\n"
    assert all("timestamp" in m for m in msgs if m["type"] in ("stdout", "stderr"))


def test_execute_stream_errors_end_with_complete(agent):
    for bad in ({"type": "execute", "code": "x", "language": "cobol"},
                {"type": "execute"},
                {"type": "nonsense", "code": "print(1)"},
                {"type": "execute", "code": "print(1)", "workdir": "/no/such/dir"}):
        msgs, code = ws_collect(agent, "/execute/stream", send=bad)
        assert msgs[0]["type"] == "error" and msgs[0]["code"], bad
        assert msgs[-1]["type"] == "complete" and msgs[-1]["success"] is False, bad


def test_execute_stream_50_in_a_row_none_hangs(agent):
    for i in range(50):
        msgs, _ = ws_collect(agent, "/execute/stream", send={
            "type": "execute", "code": f"echo {i}", "language": "bash", "workdir": agent.workdir})
        assert msgs[-1]["type"] == "complete" and msgs[-1]["exit_code"] == 0
        assert "".join(m["data"] for m in msgs if m["type"] == "stdout") == f"{i}\n"


def test_execute_stream_with_a_raw_client(agent):
    """Each frame is written on its own; whether two share a client's read depends on the
    client's speed (spacing is measured in bench/streams.py, not asserted here)."""
    s, r, left = upgrade(agent, "/execute/stream", timeout=120)
    assert r.status == 101 and r.header("sec-websocket-accept")
    s.sendall(frame(1, json.dumps({"type": "execute", "code": "echo 1", "language": "bash",
                                   "workdir": agent.workdir})))
    fr = FrameReader(s, left)
    types = []
    while "complete" not in types:
        op, p, _ = fr.read()
        types.append(json.loads(p)["type"])
    assert types == ["stdout", "result", "complete"]
    # a client that lost "complete" gets it again; one that closes ends it
    op, p, _ = fr.read()
    assert op == 1 and json.loads(p)["type"] == "complete"
    s.sendall(frame(8, struct.pack(">H", 1000)))
    msgs, code = fr.until_close()
    assert code == 1000 and all(m["type"] == "complete" for m in msgs)
    assert eof_after(s)
    s.close()


# ---- hostile frames ----

HOSTILE = [
    ("unmasked", frame(1, "hi", mask=False), 1002),
    ("reserved bits", frame(1, "hi", rsv=4), 1002),
    ("fragmented ping", frame(9, "x", fin=False), 1002),
    ("continuation without start", frame(0, "x"), 1002),
    ("unknown data opcode", frame(3, "x"), 1002),
    ("unknown control opcode", frame(0xB, ""), 1002),
    ("close code 1005", frame(8, struct.pack(">H", 1005)), 1002),
    ("close code 999", frame(8, struct.pack(">H", 999)), 1002),
    ("close 1 byte", frame(8, b"\x03"), 1002),
    ("ping over 125", frame(9, b"p" * 126), 1002),
    ("2^40-byte length", frame(2, b"", length=1 << 40), 1009),
    ("length top bit", frame(2, b"", length=1 << 63), 1002),
    ("invalid utf-8 text", frame(1, b"\xc0\xaf"), 1007),
    ("text ends mid-character", frame(1, b"ok\xe2\x82"), 1007),
    ("over 1 MiB in fragments", frame(2, b"x" * 600000, fin=False) + frame(0, b"x" * 600000), 1009),
    ("new message inside a fragmented one", frame(1, "a", fin=False) + frame(1, "b"), 1002),
]


@pytest.mark.parametrize("name,data,code", HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_frames_close_with_the_right_code(agent, name, data, code):
    p = start(agent, {"command": "sleep 30"})
    s, r, left = upgrade(agent, f"/execute/processes/{p['process_id']}/stream")
    assert r.status == 101
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass
    msgs, got = FrameReader(s, left).until_close()
    assert got == code, name
    assert eof_after(s)
    s.close()
    assert agent.alive()
    agent.post(f"/execute/kill/{p['process_id']}")


def test_ping_pong_and_close_handshake(agent):
    p = start(agent, {"command": "sleep 30"})
    s, r, left = upgrade(agent, f"/execute/processes/{p['process_id']}/stream")
    fr = FrameReader(s, left)
    s.sendall(frame(9, "hello"))
    assert fr.read()[:2] == (10, b"hello")
    s.sendall(frame(8, struct.pack(">H", 1000) + b"bye"))
    op, payload, _ = fr.read()
    assert op == 8 and struct.unpack(">H", payload[:2])[0] == 1000
    assert eof_after(s)
    s.close()
    agent.post(f"/execute/kill/{p['process_id']}")


def test_frames_sent_with_the_handshake_are_read(agent):
    """A client may send its first frame in the same packet as the upgrade request."""
    s = agent.connect(120)
    req = ("GET /execute/stream HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: MDEyMzQ1Njc4OWFiY2RlZg==\r\nSec-WebSocket-Version: 13\r\n"
           f"Authorization: Bearer {agent.token()}\r\n\r\n").encode()
    s.sendall(req + frame(1, json.dumps({"type": "execute", "code": "print(7)", "workdir": agent.workdir})))
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536)
    head, rest = data.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 101")
    msgs, code = FrameReader(s, rest).until_close()
    assert msgs[-1]["type"] == "complete" and msgs[-1]["exit_code"] == 0
    s.close()


# ---- long poll ----

def test_wait_long_poll(agent):
    p = start(agent, {"command": "sleep 0.5; echo done"})
    r = agent.get(f"/execute/processes/{p['process_id']}?wait=30")
    assert r.status == 200 and r.json()["status"] == "completed" and r.json()["stdout"] == "done\n"
    p = start(agent, {"command": "sleep 30"})
    r = agent.get(f"/execute/processes/{p['process_id']}?wait=0.2")
    assert r.status == 200 and r.json()["status"] == "running"
    for bad in ("abc", "-1", "", "nan"):
        r = agent.get(f"/execute/processes/{p['process_id']}?wait={bad}")
        assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST", bad
    agent.post(f"/execute/kill/{p['process_id']}")
    r = agent.get(f"/execute/processes/{p['process_id']}?wait=30")
    assert r.json()["status"] == "failed"


def test_wait_client_leaving_early_costs_nothing(agent):
    p = start(agent, {"command": "sleep 1"})
    for _ in range(20):
        s = agent.connect()
        s.sendall(f"GET /execute/processes/{p['process_id']}?wait=30 HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {agent.token()}\r\n\r\n".encode())
        s.close()
    assert wait_done(agent, p["process_id"])["status"] == "completed"
    assert agent.alive()


# ---- slow and absent readers ----

@pytest.mark.once
def test_reader_that_never_reads_costs_no_memory_and_slows_nothing(start_agent):
    a = start_agent()
    base = rss_kb(a.proc.pid)
    p = start(a, {"command": "head -c 200000000 /dev/zero"})
    idle = []
    for _ in range(3):
        s = SSEReader(a, f"/execute/processes/{p['process_id']}/stream")
        s.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        idle.append(s)
        ws, r, _ = upgrade(a, f"/execute/processes/{p['process_id']}/stream")
        idle.append(ws)
    rec = wait_done(a, p["process_id"], timeout=120)
    assert rec["stdout_bytes"] == 200000000
    grown = rss_kb(a.proc.pid) - base
    # the rings (1 MiB each) and one held message per reader; not 200 MB per reader
    assert grown < 16 * 1024, f"RSS grew {grown} KiB"
    for s in idle:
        (s.s if hasattr(s, "s") else s).close()
    assert a.alive()


def test_streams_end_at_shutdown(start_agent):
    a = start_agent()
    p = start(a, {"command": "sleep 60"})
    s, r, left = upgrade(a, f"/execute/processes/{p['process_id']}/stream")
    sse = SSEReader(a, f"/execute/processes/{p['process_id']}/stream")
    assert r.status == 101
    a.proc.send_signal(signal.SIGTERM)
    msgs, code = FrameReader(s, left).until_close()
    assert code in (1000, 1001)
    assert a.proc.wait(20) == 0


# ---- file watching ----

def watch_ws(agent, path, actions, want, recursive=True, timeout=60):
    """Watches path over WebSocket; after the "watching" ack runs actions(); returns the
    messages up to and including the first for which want(msgs) is true."""
    async def run():
        async with websockets.connect(ws_url(agent, "/files/watch"),
                                      extra_headers={"Authorization": "Bearer " + agent.token()}) as ws:
            await ws.send(json.dumps({"action": "watch", "path": path, "recursive": recursive}))
            ack = json.loads(await ws.recv())
            assert ack["type"] == "watching", ack
            actions()
            msgs = []
            while not want(msgs):
                msgs.append(json.loads(await ws.recv()))
            return ack, msgs
    return asyncio.run(asyncio.wait_for(run(), timeout))


def changes(msgs):
    return [(m["event"], os.path.basename(m["path"]), m["is_dir"]) for m in msgs if m["type"] == "change"]


def test_watch_ws_reports_changes(agent, tmp_path):
    d = tmp_path / "w1"
    d.mkdir()

    def act():
        (d / "f").write_text("1")
        with open(d / "f", "a") as f:
            f.write("2")
        os.rename(d / "f", d / "g")
        os.unlink(d / "g")

    ack, msgs = watch_ws(agent, str(d), act, lambda m: any(x.get("event") == "deleted" for x in m))
    assert ack["path"] == str(d) and ack["recursive"] is True
    assert changes(msgs) == [("created", "f", False), ("modified", "f", False),
                             ("renamed", "f", False), ("created", "g", False),
                             ("deleted", "g", False)]
    assert all("timestamp" in m for m in msgs)


def test_watch_is_recursive_from_the_start_unless_asked_not_to(agent, tmp_path):
    d = tmp_path / "w2"
    (d / "old" / "deeper").mkdir(parents=True)

    def act():
        (d / "old" / "deeper" / "a").write_text("x")
        (d / "top").write_text("y")

    ack, msgs = watch_ws(agent, str(d), act, lambda m: any(x.get("path", "").endswith("/top") for x in m))
    assert ack["directories"] == 3
    assert changes(msgs)[0] == ("created", "a", False)
    assert msgs[0]["path"] == str(d / "old" / "deeper" / "a")
    ack, msgs = watch_ws(agent, str(d), act, lambda m: any(x.get("path", "").endswith("/top") for x in m),
                         recursive=False)
    assert ack["directories"] == 1 and ack["recursive"] is False
    assert all("/old/" not in m["path"] for m in msgs)


def test_watch_new_subdirectory_events_with_sse(agent, tmp_path):
    d = tmp_path / "w3"
    d.mkdir()
    s = SSEReader(agent, f"/files/watch?path={d}")
    assert s.resp.status == 200 and s.resp.header("content-type").startswith("text/event-stream")
    assert s.next()["event"] == "watching"
    (d / "sub").mkdir()
    e = s.next()
    assert e["event"] == "change" and e["data"]["event"] == "created" and e["data"]["is_dir"]
    # once the directory is reported it is watched: a file in it is seen too
    (d / "sub" / "file").write_text("z")
    e = s.next()
    assert e["data"]["path"] == str(d / "sub" / "file") and e["data"]["event"] == "created"
    # removed, then made again under the same name: still followed, no stale watch
    (d / "sub" / "file").unlink()
    os.rmdir(d / "sub")
    seen = []
    while not (seen and seen[-1]["data"]["path"] == str(d / "sub") and seen[-1]["data"]["event"] == "deleted"):
        seen.append(s.next())
    (d / "sub").mkdir()
    assert s.next()["data"]["event"] == "created"
    (d / "sub" / "again").write_text("z")
    assert s.next()["data"]["path"] == str(d / "sub" / "again")
    s.close()


def test_watch_errors(agent, tmp_path):
    r = agent.get("/files/watch")
    assert r.status == 400 and r.json()["code"] == "MISSING_PARAMETER"
    r = agent.get("/files/watch?path=/no/such/dir")
    assert r.status == 404 and r.json()["code"] == "FILE_NOT_FOUND"
    f = tmp_path / "plain"
    f.write_text("x")
    r = agent.get(f"/files/watch?path={f}")
    assert r.status == 400 and r.json()["code"] == "INVALID_PATH"
    r = agent.get(f"/files/watch?path={tmp_path}&recursive=maybe")
    assert r.status == 400

    async def run():
        async with websockets.connect(ws_url(agent, "/files/watch"),
                                      extra_headers={"Authorization": "Bearer " + agent.token()}) as ws:
            out = []
            for m in ({"action": "watch", "path": "/no/such"}, {"action": "watch"}, {"action": "dance", "path": "/"}):
                await ws.send(json.dumps(m))
                out.append(json.loads(await ws.recv()))
            return out
    out = asyncio.run(asyncio.wait_for(run(), 60))
    assert [m["code"] for m in out] == ["FILE_NOT_FOUND", "MISSING_PARAMETER", "INVALID_REQUEST"]
    assert all(m["type"] == "error" for m in out)


def agent_fds(agent):
    return len(os.listdir(f"/proc/{agent.proc.pid}/fd"))


def agent_inotify_fds(agent):
    """inotify descriptors only: the agent's sockets come and go with other clients (a
    keep-alive connection of an earlier test closing mid-count), its watches do not."""
    fds = f"/proc/{agent.proc.pid}/fd"
    n = 0
    for fd in os.listdir(fds):
        try:
            n += os.readlink(f"{fds}/{fd}") == "anon_inode:inotify"
        except OSError:
            pass   # closed while we looked
    return n


def test_watch_freed_when_the_client_goes(agent, tmp_path):
    d = tmp_path / "w4"
    d.mkdir()
    for i in range(20):
        (d / f"sub{i}").mkdir()
    before = agent_inotify_fds(agent)
    readers = []
    for _ in range(5):
        s = SSEReader(agent, f"/files/watch?path={d}")
        assert s.next()["data"]["directories"] == 21
        readers.append(s)
    assert agent_inotify_fds(agent) == before + 5   # one inotify descriptor per watch
    for s in readers:
        s.close()
    poll_until(lambda: agent_inotify_fds(agent) == before)


@pytest.mark.once
def test_watch_overflow_is_reported_and_the_watch_goes_on(agent, tmp_path):
    """A client that does not read: the agent stops reading inotify, the kernel queue
    overflows, the client gets one OVERFLOW error and then changes again."""
    d = tmp_path / "w5"
    d.mkdir()
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)   # before connect: the window
    s.settimeout(120)
    s.connect(("127.0.0.1", agent.port))
    s.sendall(f"GET /files/watch?path={d} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent.token()}\r\n\r\n".encode())
    buf = b""
    while b"event: watching" not in buf:
        buf += s.recv(4096)
    limit = int(open("/proc/sys/fs/inotify/max_queued_events").read())
    # writes alternating between two files: the kernel merges only identical neighbours, so
    # each is an event; more than its queue and both socket buffers hold
    fa, fb = (os.open(d / n, os.O_CREAT | os.O_WRONLY) for n in ("a", "b"))
    for i in range(limit * 10):
        os.write(fa if i % 2 else fb, b"x")
    os.close(fa)
    os.close(fb)
    rest = buf.split(b"\n\n", 1)[1]
    overflows, after = 0, []

    def events():
        nonlocal rest
        while True:
            while b"\n\n" not in rest:
                chunk = s.recv(1 << 20)
                assert chunk
                rest += chunk
            block, rest = rest.split(b"\n\n", 1)
            yield sse_events(block.decode() + "\n\n")[0]

    it = events()
    for e in it:   # the kernel dropped events while the client read nothing
        if e.get("event") == "error" and e["data"]["code"] == "OVERFLOW":
            overflows += 1
            break
    (d / "last").write_text("x")   # the watch goes on
    for e in it:
        after.append(e)
        if e.get("data", {}).get("path", "").endswith("/last"):
            break
    assert overflows == 1 and after[-1]["data"]["event"] == "created"
    s.close()
    assert agent.alive()
