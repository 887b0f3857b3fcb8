"""Hostile clients and hostile children: what the open network and arbitrary code inside the
sandbox may throw at the agent. Each test drives the real binary over real sockets and then
checks the agent is still alive, answers /health, and left nothing behind.

Timings are measured and printed (pytest -s shows them); the bounds asserted are generous on
purpose: these are behaviour tests (no spinning, no blocking, no unbounded growth), not
benchmarks, and the machine runs other work meanwhile."""
import json
import os
import random
import signal
import socket
import time

import pytest

from conftest import (SANITIZED, TERMINAL, Agent, agent_unread, read_response, start, wait_done,
                      wait_until)

# "The loop is not blocked": /health answers within this while an attack holds the agent.
# Measured at ~1 ms; the bound is far above that (a machine busy with other work must not
# fail it) and below every deadline that would unblock a blocked loop (LIMIT_HEADER_MS 10 s).
LATENCY_BOUND_MS = 5000


# ---- helpers ----

def proc_stat(pid):
    """(state, ppid, pgid, utime+stime in ticks) of a process, or None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return fields[0], int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12])


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def zombies_of(ppid):
    return [p for p in all_pids() if (st := proc_stat(p)) and st[0] == "Z" and st[1] == ppid]


def group_members(pgid):
    """Live (non-zombie) processes in process group pgid."""
    return [p for p in all_pids() if (st := proc_stat(p)) and st[2] == pgid and st[0] != "Z"]


def cpu_seconds(pid):
    return proc_stat(pid)[3] / os.sysconf("SC_CLK_TCK")


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def health_ms(agent, timeout=10):
    t = time.monotonic()
    r = agent.request("GET", "/health", token=False, timeout=timeout)
    assert r is not None and r.status == 200, r
    return (time.monotonic() - t) * 1000


def error_of(resp):
    """The JSON error body every agent error carries: (status, code)."""
    assert resp is not None and resp.status > 0, resp
    body = json.loads(resp.body)
    assert body["error"] and body["request_id"], body
    return resp.status, body["code"]


def raw_response(agent, data, timeout=5, close_write=False):
    """Sends raw bytes and parses the one response the agent sends before closing."""
    out = agent.raw(data, timeout=timeout, close_write=close_write)
    if not out:
        return None
    a, b = socket.socketpair()
    with a, b:
        a.sendall(out)
        a.shutdown(socket.SHUT_WR)
        return read_response(b)


def request_head(path="/health", method="GET", extra=""):
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n{extra}".encode()


# ---- hostile clients: request heads ----

def test_header_block_of_70_kib_is_431(agent):
    head = request_head() + b"X-Big: " + b"a" * (70 * 1024) + b"\r\n\r\n"
    assert error_of(raw_response(agent, head)) == (431, "INVALID_REQUEST")
    assert agent.alive()


def test_ten_thousand_headers_are_431(agent):
    head = request_head() + b"".join(b"X-%d: v\r\n" % i for i in range(10000)) + b"\r\n"
    assert error_of(raw_response(agent, head)) == (431, "INVALID_REQUEST")
    assert agent.alive()


def test_ten_gigabyte_body_is_refused_before_it_arrives(agent):
    t = time.monotonic()
    r = raw_response(agent, request_head("/commands/run", "POST", "Content-Length: 10737418240\r\n\r\n"))
    assert error_of(r) == (413, "PAYLOAD_TOO_LARGE")
    assert time.monotonic() - t < 5   # answered at once, nothing waited for
    assert agent.alive()


@pytest.mark.parametrize("framing", [
    "Content-Length: -1\r\n",
    "Content-Length: +5\r\n",
    "Content-Length: 5\r\nContent-Length: 5\r\n",
    "Content-Length: 5\r\nContent-Length: 6\r\n",
    "Content-Length: 5, 5\r\n",
    "Content-Length: 0x10\r\n",
    "Content-Length: 99999999999999999999999\r\n",
    "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n",
    "Transfer-Encoding: chunked, gzip\r\n",
    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
    "Transfer-Encoding: chunked;q=1\r\n",
], ids=["negative", "plus", "dup-equal", "dup-differ", "list", "hex", "overflow", "cl+te", "te+cl",
        "chunked-not-last", "te-twice", "te-param"])
def test_ambiguous_framing_is_400_and_closes(agent, framing):
    data = request_head("/commands/background", "POST", framing + "\r\n") + b"hello" + \
        request_head() + b"\r\n"   # a smuggled second request must not be answered
    out = agent.raw(data, timeout=5)
    assert out.startswith(b"HTTP/1.1 400 "), out[:200]
    assert out.count(b"HTTP/1.1 ") == 1, out   # closed after the error: nothing smuggled
    assert b"Connection: close" in out
    assert agent.alive()


@pytest.mark.parametrize("coding", ["gzip", "identity", "x-unknown", "gzip, chunked"])
def test_unknown_transfer_coding_is_501(agent, coding):
    r = raw_response(agent, request_head("/commands/background", "POST",
                                         f"Transfer-Encoding: {coding}\r\n\r\n") + b"0\r\n\r\n")
    assert error_of(r) == (501, "INVALID_REQUEST")


@pytest.mark.parametrize("body", [
    b"zz\r\nhello\r\n0\r\n\r\n",              # not hex
    b"-5\r\nhello\r\n0\r\n\r\n",              # a sign
    b"0x5\r\nhello\r\n0\r\n\r\n",             # 0x prefix
    b"5 \r\nhello\r\n0\r\n\r\n",              # whitespace before CRLF
    b"5\nhello\n0\n\n",                       # bare LF
    b"5\r\nhelloXX0\r\n\r\n",                 # data longer than the size
    b"1" * 16 + b"\r\nx\r\n0\r\n\r\n",        # more than 15 hex digits
    b"5;a=\"unterminated\r\nhello\r\n0\r\n\r\n",
    b"5;=v\r\nhello\r\n0\r\n\r\n",            # empty extension name
    b"5\r\nhello\r\n0\r\nBad Trailer: x\r\n\r\n",
    b"5\r\nhello\r\n0\r\n" + b"T: " + b"v" * 5000 + b"\r\n\r\n",   # trailer over the limit
], ids=["not-hex", "sign", "0x", "ws", "bare-lf", "overrun", "too-many-digits", "open-quote",
        "empty-ext", "bad-trailer", "huge-trailer"])
def test_malformed_chunked_body_is_400(agent, body):
    r = raw_response(agent, request_head("/commands/background", "POST",
                                         "Transfer-Encoding: chunked\r\n\r\n") + body)
    assert error_of(r) == (400, "INVALID_REQUEST")
    assert agent.alive()


def test_chunked_body_past_the_body_limit_is_413(agent):
    """A chunk announcing 2^56 bytes allocates nothing up front: memory follows what
    arrives, and 8 MiB + 1 of it is refused."""
    with agent.connect(timeout=30) as s:
        s.sendall(request_head("/commands/background", "POST", "Transfer-Encoding: chunked\r\n\r\n")
                  + b"100000000000000\r\n")
        sent, block = 0, b"x" * 65536
        try:
            while sent < (8 << 20) + 65536 * 4:
                s.sendall(block)
                sent += len(block)
        except (BrokenPipeError, ConnectionResetError):
            pass
        r = read_response(s)
    assert error_of(r) == (413, "PAYLOAD_TOO_LARGE")
    assert agent.alive()


def test_unauthenticated_bodies_are_bounded_in_sum(start_agent):
    """Bodies are read before the token is checked. Each may be 8 MiB, but not all at once:
    past LIMIT_BODY_TOTAL (64 MiB) more are refused with 503, so 30 clients that send
    8 MiB - 1 and stop cannot pin 240 MiB. Small requests are still served meanwhile."""
    a = start_agent()
    rss0 = rss_kb(a.proc.pid)
    socks, busy = [], 0
    block = b"x" * (1 << 20)
    try:
        for _ in range(30):
            s = a.connect(timeout=10)
            socks.append(s)
            s.sendall(request_head("/commands/background", "POST", "Content-Length: 8388608\r\n\r\n"))
            try:
                for k in range(8):
                    s.sendall(block if k < 7 else block[:-1])
            except (BrokenPipeError, ConnectionResetError):
                pass
        # the agent has read (or refused and drained) every byte sent: a state, not a pause
        wait_until(lambda: all(agent_unread(s) in (0, None) for s in socks),
                   "the agent read every body byte sent")
        grown = (rss_kb(a.proc.pid) - rss0) // 1024
        assert health_ms(a) < LATENCY_BOUND_MS
        assert a.post("/commands/run", {"command": "echo small"}).json()["stdout"] == "small\n"
        for s in socks:
            s.settimeout(0.3)   # refused ones were answered long ago; held ones wait
            try:
                r = read_response(s)
            except (socket.timeout, ConnectionResetError):
                continue
            if r is not None and r.status == 503:
                busy += 1
    finally:
        for s in socks:
            s.close()
    print(f"\n30 unauthenticated 8 MiB bodies: agent RSS +{grown} MiB, {busy} refused with 503")
    assert busy >= 20
    assert grown < 150 * (3 if SANITIZED else 1)
    assert a.alive()


def test_http2_preface_is_refused(agent):
    out = agent.raw(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x12\x04\x00\x00\x00\x00\x00", timeout=5)
    assert out.startswith(b"HTTP/1.1 505 "), out[:200]
    assert agent.alive()


@pytest.mark.parametrize("seed", range(6))
def test_binary_garbage_gets_an_error_or_a_close(agent, seed):
    rnd = random.Random(seed)
    junk = bytes(rnd.getrandbits(8) for _ in range(rnd.choice([1, 17, 4096, 20000])))
    if seed == 0:
        junk = b"\x00" * 5000
    elif seed == 1:
        junk = b"\xff" * 30000
    out = agent.raw(junk, timeout=5)
    assert out == b"" or out.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 431 ", b"HTTP/1.1 414 ")), out[:200]
    assert agent.alive()


def test_nul_in_a_header_or_the_target_is_400(agent):
    assert raw_response(agent, request_head(extra="X-A: a\x00b\r\n\r\n")).status == 400
    assert raw_response(agent, b"GET /he\x00alth HTTP/1.1\r\nHost: x\r\n\r\n").status == 400
    assert agent.alive()


# ---- hostile clients: request bodies ----

@pytest.mark.parametrize("body,status,code", [
    (b"[" * 100000 + b"]" * 100000, 400, "INVALID_JSON"),
    (b'{"a":' * 100000 + b"1" + b"}" * 100000, 400, "INVALID_JSON"),
    (b"[" * 100000, 400, "INVALID_JSON"),
    # fuzz regression: an unclosed text outran the token budget (was 413 "too many values")
    (b"[[[[[", 400, "INVALID_JSON"),
    (b"[" * 40 + b"1," * 3000, 400, "INVALID_JSON"),
    (b'{"command":"echo a\x00b"}', 400, "INVALID_JSON"),           # raw control character
    (b'{"command":"echo a\\u0000b"}', 400, "INVALID_REQUEST"),    # escaped NUL: no C string
    (b'{"command":"echo","args":["a\\u0000"]}', 400, "INVALID_REQUEST"),
    (b'{"command":"env","env":{"K\\u0000":"v"}}', 400, "INVALID_REQUEST"),
    (b'{"command":"env","env":{"K":"v\\u0000"}}', 400, "INVALID_REQUEST"),
    (b'{"command":"pwd","working_dir":"/tmp\\u0000/x"}', 400, "INVALID_REQUEST"),
    (b'{"command":"echo \xff\xfe"}', 400, "INVALID_JSON"),         # not UTF-8
    (b'{"command":"echo \\ud800"}', 400, "INVALID_JSON"),          # lone surrogate
    (b'\xef\xbb\xbf{"command":"true"}', 400, "INVALID_JSON"),      # BOM
], ids=["deep-array", "deep-object", "unclosed-deep", "unclosed-short", "unclosed-wide",
        "raw-ctl", "nul-command", "nul-arg", "nul-env-key", "nul-env-value", "nul-cwd",
        "bad-utf8", "lone-surrogate", "bom"])
def test_hostile_json_bodies(agent, body, status, code):
    before = len(agent.get("/execute/processes?output=false").json()["processes"])
    r = agent.request("POST", "/commands/background", raw_body=body,
                      headers={"Content-Type": "application/json"})
    assert error_of(r) == (status, code)
    assert len(agent.get("/execute/processes?output=false").json()["processes"]) == before


def test_nul_in_query_is_400(agent):
    r = agent.get("/execute/processes?name=%00")
    assert error_of(r) == (400, "INVALID_REQUEST")


# ---- hostile clients: connections ----

def test_400_slowloris_connections_do_not_starve_health(start_agent):
    a = start_agent()
    base = [health_ms(a) for _ in range(10)]
    socks = []
    try:
        for i in range(400):
            s = a.connect(timeout=20)
            s.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: " if i % 2 else b"G")
            socks.append(s)
        t_open = time.monotonic()
        loaded = [health_ms(a) for _ in range(50)]
        # a trickler: one byte a second never extends the header deadline (absolute)
        for k in range(3):
            socks[1].sendall(b"a")
            time.sleep(0.5)
        print(f"\n/health idle: max {max(base):.1f} ms; with 400 half-open: "
              f"median {sorted(loaded)[25]:.1f} ms, max {max(loaded):.1f} ms")
        assert max(loaded) < LATENCY_BOUND_MS, loaded
        # every half-open connection is answered 408 (or closed) once LIMIT_HEADER_MS passes
        answered = closed = 0
        deadline = t_open + 10 + 60
        for s in socks:
            s.settimeout(max(0.1, deadline - time.monotonic()))
            data = b""
            try:
                while chunk := s.recv(4096):
                    data += chunk
            except (socket.timeout, ConnectionResetError):
                pass
            if data.startswith(b"HTTP/1.1 408 "):
                answered += 1
            elif data == b"":
                closed += 1
        print(f"after the header deadline: {answered} answered 408, {closed} closed")
        assert answered + closed == 400
        assert answered >= 200   # every one that had sent bytes
    finally:
        for s in socks:
            s.close()
    assert a.alive()


def test_reader_that_stops_reading_does_not_block_others(start_agent):
    """A client that requests a large answer and never reads it: the agent keeps serving
    everyone else, and its memory for the stalled reply is bounded by that reply."""
    a = start_agent("--output-limit", "4M")
    ids = [start(a, {"command": "head -c 4194304 /dev/zero | tr '\\0' x"})["process_id"] for _ in range(4)]
    for i in ids:
        assert wait_done(a, i)["stdout_bytes"] == 4 << 20
    rss0 = rss_kb(a.proc.pid)
    stalled = []
    for _ in range(4):
        s = a.connect(timeout=30)
        s.sendall(b"GET /execute/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                  + a.token().encode() + b"\r\n\r\n")
        stalled.append(s)
    wait_until(lambda: all(agent_unread(s) == 0 for s in stalled), "the agent read the four requests")
    ms = [health_ms(a) for _ in range(20)]
    r = a.get("/execute/processes?output=false")
    assert r.status == 200 and r.json()["count"] == 4
    grown = rss_kb(a.proc.pid) - rss0
    print(f"\n4 stalled readers of a 16 MiB list: agent RSS +{grown // 1024} MiB, "
          f"/health max {max(ms):.1f} ms")
    # each stalled reply is held once (~16 MiB); nothing is copied per poll round
    assert grown < 4 * 40 * 1024 * (3 if SANITIZED else 1)
    assert max(ms) < LATENCY_BOUND_MS
    # the stalled clients still get their whole answer once they read
    s = stalled[0]
    s.settimeout(30)
    r = read_response(s)
    assert r.status == 200 and len(r.json()["processes"]) == 4
    for s in stalled:
        s.close()
    assert a.alive()


@pytest.mark.once
def test_stalled_reader_is_dropped_after_the_write_deadline(start_agent):
    """LIMIT_WRITE_MS (60 s) without progress closes the connection and frees its reply."""
    a = start_agent("--output-limit", "16M")
    i = start(a, {"command": "head -c 16777216 /dev/zero | tr '\\0' x"})["process_id"]
    wait_done(a, i)
    # a 16 MiB reply and a pinned 64 KiB receive buffer: more than loopback's buffers can
    # absorb (autotuning grew them past a 4 MiB reply here, and the reply then went out whole)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.settimeout(90)
    s.connect(("127.0.0.1", a.port))
    s.sendall(b"GET /execute/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
              + a.token().encode() + b"\r\n\r\n")
    wait_until(lambda: agent_unread(s) == 0, "the agent accepted and read the request")
    fds = fd_count(a.proc.pid)
    t = time.monotonic()
    while fd_count(a.proc.pid) >= fds and time.monotonic() - t < 75:
        time.sleep(1)
    waited = time.monotonic() - t
    print(f"\nstalled reader dropped after {waited + 1:.0f} s")
    assert fd_count(a.proc.pid) < fds, "stalled reader still connected after 75 s"
    # what it reads now ends early: the agent closed, it did not finish the reply
    got = b""
    try:
        while chunk := s.recv(1 << 20):
            got += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    s.close()
    assert len(got) < 16 << 20
    assert a.alive()


@pytest.mark.once
def test_unread_large_replies_are_bounded_in_sum(start_agent):
    """LIMIT_REPLY_TOTAL (512 MiB): one large reply always goes out; past the sum a large
    GET gets 503 while small requests go on, and the sum is given back when a reader leaves."""
    a = start_agent("--output-limit", "8M")
    # 10 records of 8 MiB of NUL bytes: the full list is ~480 MiB of JSON (\u0000 each)
    for _ in range(10):
        start(a, {"command": "head -c 8388608 /dev/zero"})
    deadline = time.monotonic() + 60
    while any(p["status"] not in TERMINAL
              for p in a.get("/execute/processes?output=false").json()["processes"]):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    req = (b"GET /execute/processes HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
           + a.token().encode() + b"\r\n\r\n")

    def ask(head_only=True):
        s = a.connect(timeout=60)
        s.sendall(req)
        return s, read_response(s, head_only=head_only)

    first, r = ask()            # rendered, then left unread: ~480 MiB held
    assert r.status == 200 and int(r.header("content-length")) > 400 << 20
    second, r = ask(head_only=False)
    second.close()
    assert r.status == 503 and r.json()["code"] == "INTERNAL_ERROR" and "busy" in r.json()["error"]
    assert a.get("/health").status == 200
    assert a.get("/execute/processes?output=false").status == 200
    first.close()               # the agent's next write fails: the reply is freed
    deadline = time.monotonic() + 60
    while True:
        third, r = ask()
        third.close()
        if r.status == 200:
            break
        assert time.monotonic() < deadline, "large replies still refused after the reader left"
        time.sleep(0.2)
    assert a.alive()


def test_connection_flood_at_the_descriptor_limit(tmp_path):
    """With RLIMIT_NOFILE 64, a flood of connections hits EMFILE in accept: the agent must
    neither spin (the listener stays readable) nor stop accepting once descriptors free up."""
    a = Agent(tmp=tmp_path, prefix=["prlimit", "--nofile=64:64", "--"])
    try:
        assert a.alive()
        flood = []
        for _ in range(150):
            try:
                flood.append(socket.create_connection(("127.0.0.1", a.port), timeout=5))
            except OSError:
                break
        time.sleep(1)
        cpu0, t0 = cpu_seconds(a.proc.pid), time.monotonic()
        time.sleep(3)
        cpu = cpu_seconds(a.proc.pid) - cpu0
        wall = time.monotonic() - t0
        print(f"\nflood of {len(flood)} at nofile=64: agent CPU {cpu:.2f} s over {wall:.1f} s, "
              f"{fd_count(a.proc.pid)} fds open")
        assert cpu < 0.5 * wall, "the loop spins while out of descriptors"
        # the ones accepted and closed by the spare-descriptor trick see EOF; the rest wait
        dropped = 0
        for s in flood:
            s.settimeout(0.01)
            try:
                if s.recv(1) == b"":
                    dropped += 1
            except (socket.timeout, ConnectionResetError):
                pass
        print(f"{dropped} of them were accepted and dropped")
        assert "accept_dropped" in a.log() or dropped == 0
        for s in flood:
            s.close()
        # recovers: every descriptor back, requests served again
        deadline = time.monotonic() + 60
        while True:
            try:
                if a.alive():
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "agent did not recover after the flood"
            time.sleep(0.2)
        r = a.get("/info")
        assert r.status == 200
        p = start(a, {"command": "echo after-flood"})
        assert wait_done(a, p["process_id"])["stdout"] == "after-flood\n"
    finally:
        assert a.stop() == 0
        assert a.sanitizer_report() is None


@pytest.mark.parametrize("how", ["close", "reset", "half-close"])
def test_client_leaving_a_synchronous_run(agent, how):
    name = f"left-{how}"
    body = json.dumps({"command": "sleep 0.5; echo late", "name": name}).encode()
    s = agent.connect()
    s.sendall(b"POST /commands/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + agent.token().encode()
              + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    wait_until(lambda: agent.get(f"/execute/processes?name={name}").json()["processes"],
               "the run started before its client leaves")
    if how == "reset":
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    elif how == "half-close":
        s.shutdown(socket.SHUT_WR)   # the agent takes this for a departure (see README)
    else:
        s.close()
    deadline = time.monotonic() + 60
    while True:
        recs = agent.get(f"/execute/processes?name={name}").json()["processes"]
        if recs and recs[0]["status"] in TERMINAL:
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert recs[0]["status"] == "completed" and recs[0]["stdout"] == "late\n"
    if how == "half-close":
        s.close()
    assert zombies_of(agent.proc.pid) == []
    assert agent.alive()


# ---- hostile children ----

def test_fork_bomb_is_contained_and_killed(start_agent):
    """A fork bomb run as an unprivileged user under RLIMIT_NPROC (root ignores that limit,
    hence setpriv): the agent stays responsive, the timeout kills the whole group, nothing
    of it survives. README "Hardening" explains the limits to set in a real sandbox."""
    a = start_agent("--grace", "1")
    # bash, not dash: dash exits when a fork fails, so its bomb burns out by itself
    bomb = "prlimit --nproc=50:50 setpriv --reuid=65534 --regid=65534 --clear-groups -- " \
           "bash -c ':(){ :|:& };:; sleep 30'"
    p = start(a, {"command": bomb, "timeout": 10, "working_dir": "/"})
    pgid = p["pid"]
    try:
        # the bomb has grown (a state) rather than "a second has passed"
        members = len(wait_until(lambda: (lambda g: g if len(g) >= 10 else None)(group_members(pgid)),
                                 "the bomb to reach 10 processes", timeout=9))
        ms = [health_ms(a) for _ in range(10)]
        print(f"\nfork bomb: {members} processes in its group; /health max {max(ms):.1f} ms")
        assert 10 <= members <= 60
        assert max(ms) < LATENCY_BOUND_MS
        rec = wait_done(a, p["process_id"], timeout=60)
        assert rec["status"] == "failed" and rec["reason"] == "timeout"
        deadline = time.monotonic() + 30
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert group_members(pgid) == []
        wait_until(lambda: zombies_of(a.proc.pid) == [], "no zombie left")
        assert a.alive()
    finally:
        try:
            os.killpg(pgid, signal.SIGKILL)   # only if the test failed before the agent did it
        except OSError:
            pass


def test_child_closing_stdout_early(agent):
    p = start(agent, {"command": "exec 1>&-; sleep 0.3; echo still-here >&2; echo lost; exit 3"})
    rec = wait_done(agent, p["process_id"])
    assert rec["exit_code"] == 3 and rec["stdout"] == "" and rec["stdout_bytes"] == 0
    assert "still-here" in rec["stderr"]


def test_child_writing_binary_and_invalid_utf8(agent):
    raw = bytes(range(256)) + b"\xc3\x28\xed\xa0\x80\xf4\x90\x80\x80\xf0\x9f\x98" + "é✓😀".encode()
    p = start(agent, {"command": "python3", "args": [
        "-c", "import sys; sys.stdout.buffer.write(bytes.fromhex(sys.argv[1]))", raw.hex()]})
    rec = wait_done(agent, p["process_id"])
    assert rec["status"] == "completed", rec
    assert rec["stdout_bytes"] == len(raw)
    assert rec["stdout"] == raw.decode("utf-8", errors="replace")   # U+FFFD per maximal subpart
    out = agent.get(f"/execute/processes/{p['process_id']}/output")
    assert out.body == raw


def test_child_writing_10_mb_without_newlines(agent):
    p = start(agent, {"command": "head -c 10000000 /dev/zero | tr '\\0' x"})
    rec = wait_done(agent, p["process_id"])
    assert rec["stdout_bytes"] == 10_000_000 and rec["stdout_truncated"] is True
    assert rec["stdout"] == "x" * (1 << 20)
    assert agent.alive()


@pytest.mark.once
def test_child_leaving_10000_zombies(start_agent):
    """The child forks 10 000 children that exit at once, never waits, then exits itself:
    they are reparented to the agent (subreaper, or PID 1) and reaped, none remains."""
    a = start_agent()
    script = ("for (1..10000) { my $p = fork; die \"fork: $!\" unless defined $p; exit 0 if !$p }"
              " my $n = 0; opendir(my $d, '/proc'); for (readdir $d) { next unless /^\\d+$/;"
              " open(my $f, '<', \"/proc/$_/stat\") or next; my $s = <$f>;"
              " $n++ if $s =~ /\\) Z (\\d+)/ && $1 == $$ } print \"zombies=$n\\n\"")
    # seconds on an idle machine; minutes when other work loads it (seen: over 120 s)
    p = start(a, {"command": "perl", "args": ["-e", script], "timeout": 900})
    rec = wait_done(a, p["process_id"], timeout=900)
    assert rec["status"] == "completed", rec
    made = int(rec["stdout"].strip().split("=")[1])
    print(f"\n{made} zombies left by the child at its exit")
    assert made >= 9000
    deadline = time.monotonic() + 60
    while zombies_of(a.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert zombies_of(a.proc.pid) == []
    assert a.alive()


def test_daemon_escaping_with_setsid(start_agent, tmp_path):
    """kill signals the record's process group. A child that setsid()s into a new session
    leaves that group, so kill cannot reach it (README, Hardening); it is still the agent's
    to reap when it ends (subreaper), and no zombie stays."""
    a = start_agent("--grace", "1")
    pidfile = tmp_path / "daemon.pid"
    p = start(a, {"command": f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' & sleep 300"})
    deadline = time.monotonic() + 30
    while not (pidfile.exists() and pidfile.read_text().strip()):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    daemon = int(pidfile.read_text())
    try:
        r = a.request("DELETE", "/execute/kill", body={"process_id": p["process_id"]})
        assert r.status == 200, r
        rec = wait_done(a, p["process_id"])
        assert rec["reason"] == "killed"
        assert group_members(p["pid"]) == []
        st = proc_stat(daemon)
        assert st is not None and st[0] != "Z", "the escaped daemon is not reachable by kill"
        assert st[1] == a.proc.pid   # reparented to the agent (subreaper)
    finally:
        os.kill(daemon, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while proc_stat(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc_stat(daemon) is None, "the agent did not reap the escaped daemon"
    assert a.alive()


# ---- valgrind: one short scenario under memcheck (make valgrind) ----

@pytest.mark.skipif(not os.environ.get("AGENT_DEBUG_BIN"),
                    reason="AGENT_DEBUG_BIN unset (make valgrind builds and sets it)")
def test_valgrind_memcheck_short_scenario(tmp_path):
    vlog = tmp_path / "valgrind.log"
    a = Agent(tmp=tmp_path, bin=os.environ["AGENT_DEBUG_BIN"],
              prefix=["valgrind", "--leak-check=full", "--show-leak-kinds=definite",
                      "--errors-for-leak-kinds=definite", "--error-exitcode=99",
                      f"--log-file={vlog}"])
    try:
        assert a.get("/health", token=False).status == 200
        assert a.get("/info").status == 200
        assert a.get("/nope").status == 404
        assert a.get("/info", token="not.a.token").status == 401
        assert raw_response(a, request_head(extra="X: " + "a" * 20000 + "\r\n\r\n")).status == 431
        assert raw_response(a, request_head("/commands/background", "POST",
                                            "Transfer-Encoding: chunked\r\n\r\n") + b"zz\r\n").status == 400
        body = b'{"command":"printf \'a\\\\377b\'; echo err >&2; exit 2","name":"v"}'
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        r = raw_response(a, request_head("/commands/run", "POST", "Authorization: Bearer " + a.token()
                                         + "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                         + chunked, timeout=60)
        assert r.status == 200 and r.json()["exit_code"] == 2, r
        p = start(a, {"code": "print('x' * 100000)", "language": "python"}, "/execute/background")
        wait_done(a, p["process_id"], timeout=60)
        q = start(a, {"command": "sleep 30"})
        assert a.request("DELETE", "/execute/kill", body={"process_id": q["process_id"]}).status == 200
        wait_done(a, q["process_id"], timeout=60)
        assert a.post("/commands/run", {"command": "sleep 5", "timeout": 1}).status == 408
        assert a.get("/execute/processes").status == 200
        assert a.get(f"/execute/processes/{p['process_id']}/output?offset=5").status == 200
        assert a.request("DELETE", f"/execute/processes/{p['process_id']}").status == 200
        assert a.post("/commands/background", {"command": 5}).status == 400
        assert a.request("POST", "/commands/background", raw_body=b"[" * 1000).status == 400
        with a.connect() as s:   # a client leaving a synchronous run
            body = b'{"command":"sleep 0.3","name":"vg-left"}'
            s.sendall(b"POST /commands/run HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
                      + a.token().encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
            wait_until(lambda: a.get("/execute/processes?name=vg-left").json()["processes"],
                       "the run started before its client leaves")
        wait_until(lambda: [p for p in a.get("/execute/processes?name=vg-left").json()["processes"]
                            if p["status"] in TERMINAL], "the run finished without its client")
        s = a.connect()   # a connection still open at shutdown
        s.sendall(b"GET /health HTTP/1.1\r\n")
    finally:
        rc = a.stop(timeout=60)
    report = vlog.read_text()
    summary = [l for l in report.splitlines() if "ERROR SUMMARY" in l or "definitely lost" in l
               or "in use at exit" in l]
    print("\n" + "\n".join(summary))
    assert rc == 0, report[-4000:]
    assert "ERROR SUMMARY: 0 errors" in report, report[-4000:]
    assert "definitely lost: 0 bytes" in report or "no leaks are possible" in report or \
        "definitely lost" not in report, report[-4000:]
