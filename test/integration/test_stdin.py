"""stdin and terminals over plain HTTP (issue 15): a pipe fed by POST .../stdin, stdin text,
close, the 1 MiB bound, a process on its own PTY (tty, size, resize, Ctrl-C), and output
that is bytes (UTF-8 cut across reads is joined)."""
import base64
import json
import subprocess
import time

import pytest

from conftest import get, start, wait_done


def wait_for(fn, timeout=20, what="condition"):
    """Polls fn until it returns something truthy; bounded."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def wait_stdout(agent, pid, text, timeout=20):
    return wait_for(lambda: text in get(agent, pid)["stdout"] and get(agent, pid), timeout,
                    f"{text!r} in the output of {pid}")


def curl(agent, *args):
    out = subprocess.run(["curl", "-sS", "-H", "Authorization: Bearer " + agent.token(), *args],
                         check=True, capture_output=True, timeout=30).stdout
    return json.loads(out)


def url(agent, path):
    return f"http://127.0.0.1:{agent.port}{path}"


# ---- pipes ----

def test_input_fed_with_curl_alone(agent):
    """The issue's first example: python3 -c 'print(input())' fed through the endpoint."""
    started = curl(agent, "-H", "Content-Type: application/json", "-d",
                   json.dumps({"command": "python3 -c 'print(input())'", "stdin": True}),
                   url(agent, "/commands/background"))
    pid = started["process_id"]
    r = curl(agent, "--data-binary", "hello from curl\n", url(agent, f"/execute/processes/{pid}/stdin"))
    assert r["process_id"] == pid and r["bytes"] == 16 and not r["stdin_closed"]
    rec = wait_done(agent, pid)
    assert rec["status"] == "completed" and rec["stdout"] == "hello from curl\n"


def test_cat_gets_eof_on_close(agent):
    pid = start(agent, {"command": "cat", "stdin": True})["process_id"]
    a = agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"one ")
    assert a.status == 200, a
    b = agent.post(f"/execute/processes/{pid}/stdin?close=true", raw_body=b"two")
    assert b.status == 200 and b.json()["stdin_closed"] is True, b
    rec = wait_done(agent, pid)
    assert rec["status"] == "completed" and rec["stdout"] == "one two"
    # closed: further writes and closes are answered, not ignored
    late = agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"x")
    assert late.status == 409 and late.json()["code"] == "INVALID_REQUEST", late


def test_close_endpoint_and_json_body(agent):
    pid = start(agent, {"command": "cat", "stdin": True})["process_id"]
    r = agent.post(f"/execute/processes/{pid}/stdin", {"data": "caf\u00e9 "})
    assert r.status == 200 and r.json()["bytes"] == 6, r
    r = agent.post(f"/execute/processes/{pid}/stdin",
                   {"data": base64.b64encode(b"\x00\x01bin").decode(), "encoding": "base64"})
    assert r.status == 200 and r.json()["bytes"] == 5, r
    r = agent.post(f"/execute/processes/{pid}/stdin/close")
    assert r.status == 200 and r.json()["stdin_closed"] is True, r
    again = agent.post(f"/execute/processes/{pid}/stdin/close")
    assert again.status in (200, 409), again   # 409 once the record finished
    rec = wait_done(agent, pid)
    out = agent.get(f"/execute/processes/{pid}/output")
    assert rec["status"] == "completed" and out.body == "caf\u00e9 ".encode() + b"\x00\x01bin"


def test_stdin_text_like_subprocess_input(agent):
    rec = wait_done(agent, start(agent, {"command": "cat", "stdin": "line 1\nline \u00e9\n"})["process_id"])
    assert rec["stdout"] == "line 1\nline \u00e9\n" and rec["status"] == "completed"
    rec = wait_done(agent, start(agent, {"command": "wc -c", "stdin": ""})["process_id"])
    assert rec["stdout"].strip() == "0"
    # larger than a pipe holds, and larger than the pending bound: the body bounds it
    text = "x" * (3 << 20)
    rec = wait_done(agent, start(agent, {"command": "wc -c", "stdin": text})["process_id"])
    assert rec["stdout"].strip() == str(3 << 20)
    # code takes it too
    rec = wait_done(agent, start(agent, {"code": "import sys; print(sys.stdin.read().upper())",
                                         "stdin": "shout"}, path="/execute/background")["process_id"])
    assert rec["stdout"] == "SHOUT\n"


def test_stdin_on_synchronous_run(agent):
    r = agent.post("/commands/run", {"command": "tr a-z A-Z", "stdin": "quiet"})
    assert r.status == 200 and r.json()["stdout"] == "QUIET", r


def test_default_stdin_is_dev_null(agent):
    rec = wait_done(agent, start(agent, {"command": "cat; echo done"})["process_id"])
    assert rec["stdout"] == "done\n"
    pid = start(agent, {"command": "sleep 30"})["process_id"]
    r = agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"x")
    assert r.status == 409 and "stdin" in r.json()["error"], r
    agent.post(f"/execute/kill/{pid}")


@pytest.mark.parametrize("body, field", [
    ({"stdin": 5}, "stdin"), ({"stdin": ["a"]}, "stdin"), ({"stdin": {"data": "x"}}, "stdin"),
    ({"pty": "yes"}, "pty"), ({"pty": True, "cols": 0}, "cols"), ({"rows": 1.5}, "rows"),
    ({"cols": 70000}, "cols"),
])
def test_wrong_types_are_400(agent, body, field):
    r = agent.post("/commands/background", {"command": "cat", **body})
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST", r
    assert f"'{field}'" in r.json()["error"]


def test_writes_stay_in_order(agent):
    pid = start(agent, {"command": "cat", "stdin": True})["process_id"]
    parts = [f"{i:04d}|".encode() for i in range(300)]
    with agent.connect() as s:   # pipelined on one connection: answered in order
        req = b""
        for p in parts:
            req += (f"POST /execute/processes/{pid}/stdin HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Bearer {agent.token()}\r\nContent-Length: {len(p)}\r\n\r\n").encode() + p
        s.sendall(req)
        from conftest import read_response
        for _ in parts:
            assert read_response(s).status == 200
    assert agent.post(f"/execute/processes/{pid}/stdin/close").status == 200
    rec = wait_done(agent, pid)
    assert rec["stdout"] == b"".join(parts).decode()


def test_pending_bound_is_429(agent):
    """A child that never reads: the pipe fills, then 1 MiB waits, then 429; a single write
    over 1 MiB is 413. Nothing blocks: health still answers."""
    pid = start(agent, {"command": "sleep 60", "stdin": True})["process_id"]
    chunk = b"y" * (256 << 10)
    statuses = []
    for _ in range(12):   # pipe (64 KiB..1 MiB) + 1 MiB pending < 12 x 256 KiB
        r = agent.post(f"/execute/processes/{pid}/stdin", raw_body=chunk)
        statuses.append(r.status)
        if r.status == 429:
            assert r.json()["code"] == "STDIN_FULL" and r.header("retry-after") == "1", r
            break
        assert r.json()["pending"] <= 1 << 20
    assert statuses[-1] == 429, statuses
    big = agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"z" * ((1 << 20) + 1))
    assert big.status == 413 and big.json()["code"] == "PAYLOAD_TOO_LARGE", big
    assert agent.get("/health", token=False).status == 200
    assert agent.post(f"/execute/kill/{pid}", {"signal": "SIGKILL"}).status == 200
    wait_done(agent, pid)


def test_pending_drains_as_the_child_reads(agent):
    """More than the pipe holds, taken in as the child reads: nothing lost, nothing doubled."""
    pid = start(agent, {"command": "sleep 0.3; wc -c", "stdin": True})["process_id"]
    sent = 0
    for _ in range(8):
        r = agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"q" * (200 << 10))
        if r.status == 429:
            time.sleep(0.05)
            continue
        assert r.status == 200, r
        sent += 200 << 10
    agent.post(f"/execute/processes/{pid}/stdin/close")
    rec = wait_done(agent, pid)
    assert rec["stdout"].strip() == str(sent)


def test_reader_gone(agent):
    pid = start(agent, {"command": "head -c 3", "stdin": True})["process_id"]
    assert agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"abcdef").status == 200
    rec = wait_done(agent, pid)
    assert rec["stdout"] == "abc"
    r = agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"more")
    assert r.status == 409, r


def test_errors(agent):
    r = agent.post("/execute/processes/proc_0000000000000000/stdin", raw_body=b"x")
    assert r.status == 404 and r.json()["code"] == "PROCESS_NOT_FOUND", r
    pid = start(agent, {"command": "cat", "stdin": True})["process_id"]
    for body in ({"data": 5}, {"data": "x", "encoding": "rot13"}, {"data": "!!", "encoding": "base64"},
                 {"close": "yes"}):
        r = agent.post(f"/execute/processes/{pid}/stdin", body)
        assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST", (body, r)
    r = agent.post(f"/execute/processes/{pid}/stdin?close=maybe", raw_body=b"")
    assert r.status == 400, r
    r = agent.request("POST", f"/execute/processes/{pid}/stdin", raw_body=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["code"] == "INVALID_JSON", r
    r = agent.post(f"/execute/processes/{pid}/resize", {"cols": 80, "rows": 24})
    assert r.status == 409 and "terminal" in r.json()["error"], r
    agent.post(f"/execute/processes/{pid}/stdin/close")
    wait_done(agent, pid)


def test_queued_process_gets_its_stdin(start_agent):
    a = start_agent("--max-running", "1")
    blocker = start(a, {"command": "sleep 0.5"})["process_id"]
    pid = start(a, {"command": "cat", "stdin": True})["process_id"]
    assert get(a, pid)["status"] == "queued"
    assert a.post(f"/execute/processes/{pid}/stdin?close=1", raw_body=b"early").status == 200
    wait_done(a, blocker)
    assert wait_done(a, pid)["stdout"] == "early"


# ---- terminals ----

def test_pty_is_the_controlling_terminal(agent):
    pid = start(agent, {"command": "tty; stty size; echo $TERM; test -t 0 && echo stdin-tty; "
                                   "ps -o tty= -p $$ >/dev/null 2>&1; echo err >&2",
                        "pty": True, "cols": 100, "rows": 30})["process_id"]
    rec = wait_done(agent, pid)
    lines = rec["stdout"].split("\r\n")
    assert lines[0].startswith("/dev/pts/"), rec
    assert lines[1] == "30 100" and lines[2] == "xterm-256color" and lines[3] == "stdin-tty"
    assert "err" in rec["stdout"] and rec["stderr"] == ""


def test_pty_resize_and_input(agent):
    pid = start(agent, {"command": "stty size; read a; stty size; read b; echo got $b",
                        "pty": True})["process_id"]
    wait_stdout(agent, pid, "24 80")
    r = agent.post(f"/execute/processes/{pid}/resize", {"cols": 132, "rows": 43})
    assert r.status == 200 and r.json() == {"process_id": pid, "cols": 132, "rows": 43}, r
    agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"\n")
    wait_stdout(agent, pid, "43 132")
    agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"typed\r")
    rec = wait_done(agent, pid)
    assert "got typed" in rec["stdout"] and rec["status"] == "completed"
    for body in ({"cols": 0, "rows": 5}, {"cols": 5}, {"cols": "80", "rows": 24}):
        r = agent.post(f"/execute/processes/{pid}/resize", body)
        assert r.status == 400, (body, r)
    r = agent.post(f"/execute/processes/{pid}/resize", {"cols": 80, "rows": 24})
    assert r.status == 409, r


def test_pty_sigwinch_reaches_the_foreground(agent):
    pid = start(agent, {"command": "trap 'echo winch $(stty size)' WINCH; echo ready; "
                                   "while :; do sleep 0.05; done", "pty": True})["process_id"]
    wait_stdout(agent, pid, "ready")
    agent.post(f"/execute/processes/{pid}/resize", {"cols": 90, "rows": 33})
    wait_stdout(agent, pid, "winch 33 90")
    agent.post(f"/execute/kill/{pid}", {"signal": "SIGKILL"})
    wait_done(agent, pid)


def test_pty_ctrl_c_interrupts(agent):
    pid = start(agent, {"command": "echo ready; exec sleep 100", "pty": True})["process_id"]
    wait_stdout(agent, pid, "ready")
    time.sleep(0.05)   # not a wait for state: sleep may not have exec'd yet; retried below
    deadline = time.monotonic() + 20
    while get(agent, pid)["status"] == "running":
        agent.post(f"/execute/processes/{pid}/stdin", raw_body=b"\x03")
        assert time.monotonic() < deadline
        time.sleep(0.2)
    rec = get(agent, pid)
    assert rec["signal"] == "SIGINT" and rec["exit_code"] == 130, rec


def test_pty_output_complete_at_exit(agent):
    """A terminal gives a few KiB per read: what is still buffered at exit is read to the
    end, not cut at the first short read."""
    pids = [start(agent, {"command": "seq 1 3000; echo END", "pty": True})["process_id"]
            for _ in range(8)]
    for pid in pids:
        rec = wait_done(agent, pid)
        assert rec["stdout"].endswith("2999\r\n3000\r\nEND\r\n"), (rec["stdout"][-60:], rec["stdout_bytes"])


def test_pty_stdin_text_then_eof(agent):
    rec = wait_done(agent, start(agent, {"command": "cat", "pty": True, "stdin": "abc"})["process_id"])
    assert rec["status"] == "completed" and "abc" in rec["stdout"], rec
    pid = start(agent, {"command": "cat; echo cat-ended", "pty": True})["process_id"]
    agent.post(f"/execute/processes/{pid}/stdin?close=true", raw_body=b"line\n")
    rec = wait_done(agent, pid)
    assert "cat-ended" in rec["stdout"], rec


# ---- output is bytes ----

def test_utf8_cut_across_reads_is_joined(agent):
    # the first half of é, a pause (a separate read), then the second half
    pid = start(agent, {"command": r"printf 'a\303'; sleep 0.5; printf '\251b\377'", "stdin": False})["process_id"]
    wait_for(lambda: get(agent, pid)["stdout_bytes"] >= 2, what="first half")
    rec = get(agent, pid)
    if rec["status"] == "running":
        assert rec["stdout"] == "a", rec   # the unfinished character waits, no U+FFFD
    rec = wait_done(agent, pid)
    assert rec["stdout"] == "a\u00e9b\ufffd", rec


def test_utf8_cut_by_the_ring_is_dropped(start_agent):
    a = start_agent("--output-limit", "4096")
    # 4097 bytes: é then 4095 x; the ring keeps the last 4096, starting inside é
    rec = wait_done(a, start(a, {"command": r"printf '\303\251'; head -c 4095 /dev/zero | tr '\0' x"})["process_id"])
    assert rec["stdout_truncated"] and rec["stdout"] == "x" * 4095, rec["stdout"][:10]


def test_unfinished_character_at_exit_is_one_replacement(agent):
    rec = wait_done(agent, start(agent, {"command": r"printf 'z\342\202'"})["process_id"])
    assert rec["stdout"] == "z\ufffd"
