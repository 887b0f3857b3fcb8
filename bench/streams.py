#!/usr/bin/python3
"""Live-stream figures (issue 14, "Speed and memory"), against the binary given:
  - latency from a child's write to an SSE client: p50/p99, one stream and 100 at once
  - 1000 idle WebSockets: agent memory per socket, /health latency meanwhile
  - 1 GB of output followed live by one WebSocket client vs no reader; RSS with a client
    that stops reading
Usage: bench/streams.py BIN [OUT_DIR] (STREAMS_QUICK=1: smaller counts). Prints a table and
writes OUT_DIR/streams.json. Loopback, no auth; figures depend on the machine's load."""
import base64
import json
import os
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
OUT = sys.argv[2] if len(sys.argv) > 2 else "build/bench"
QUICK = os.environ.get("STREAMS_QUICK") == "1"


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Agent:
    def __init__(self, *flags):
        self.tmp = tempfile.mkdtemp(prefix="bench-streams-")
        self.p = subprocess.Popen([BIN, "--listen", "127.0.0.1:0", "--no-auth", "--workdir", self.tmp, *flags],
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.port = int(self.p.stdout.readline().decode().split(":")[-1])

    def req(self, method, path, body=None, sock=None):
        s = sock or socket.create_connection(("127.0.0.1", self.port))
        data = json.dumps(body).encode() if body is not None else b""
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(data)}\r\n\r\n".encode() + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, rest = buf.split(b"\r\n\r\n", 1)
        n = int([l for l in head.decode().split("\r\n") if l.lower().startswith("content-length")][0].split(":")[1])
        while len(rest) < n:
            rest += s.recv(65536)
        if not sock:
            s.close()
        return json.loads(rest[:n]) if n else None

    def start(self, cmd):
        return self.req("POST", "/commands/background", {"command": cmd, "timeout": 0})["process_id"]

    def wait(self, pid):
        while True:
            r = self.req("GET", f"/execute/processes/{pid}?wait=300")
            if r["status"] in ("completed", "failed"):
                return r

    def stop(self):
        self.p.terminate()
        self.p.wait(30)


def sse_open(port, path):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    return s


def ws_open(port, path):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101"), buf[:80]
    return s


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(len(v) * p))] if v else float("nan")


# A child that prints the wall clock in ns just before each write (the client compares
# with its own: one host, one clock), every `gap` seconds until the stop file appears (or
# `n` lines: a bench that died leaves no writer behind for long).
PY_WRITER = ("python3 -c 'import time,os\nfor i in range({n}):\n    if os.path.exists(\"{stop}\"): break\n"
             "    print(time.time_ns(), flush=True)\n    time.sleep({gap})'")


def latency(agent, streams, samples, gap):
    """Child write -> SSE client, `streams` at once. Samples count only once the whole set
    is up: every interpreter started and every client attached and served a line written
    after that (starting 100 interpreters on 2 cores is seconds of CPU, and connecting
    clients meanwhile measures that, not the agent). The client only records (time,
    bytes) while measuring and parses afterwards, so one socket's parsing never delays
    another's receive; its own delay (select return -> recv) is reported beside."""
    stop = os.path.join(agent.tmp, f"stop-{time.time_ns()}")
    cmd = PY_WRITER.format(n=samples * 20 + int(120 / gap), stop=stop, gap=gap)
    pids = [agent.start(cmd) for _ in range(streams)]
    sel = selectors.DefaultSelector()
    for i, pid in enumerate(pids):
        s = sse_open(agent.port, f"/execute/processes/{pid}/stream")
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ, i)
    attached = time.time_ns()
    fresh = [False] * streams     # a line written after every client attached
    tail = [b""] * streams
    raw = []                      # (receive time, stream, bytes) while measuring
    own = []                      # client delay: select returned -> this recv, ms
    ready = end = None
    open_ = streams
    while open_:
        events = sel.select(60)
        if not events:
            raise RuntimeError("streams stalled")
        t_sel = time.time_ns()
        for key, _ in events:
            s, i = key.fileobj, key.data
            chunk = s.recv(1 << 16)
            now = time.time_ns()
            if not chunk:
                sel.unregister(s)
                s.close()
                open_ -= 1
                continue
            if ready is not None:
                raw.append((now, i, chunk))
                own.append((now - t_sel) / 1e6)
                continue
            # warming up: is a line written after `attached` in here?
            tail[i] += chunk
            for line in tail[i].split(b"\n"):
                if line.startswith(b"data: {\"data\""):
                    for v in json.loads(line[6:])["data"].split():
                        if int(v) > attached:
                            fresh[i] = True
            tail[i] = tail[i][tail[i].rfind(b"\n") + 1:]
        if ready is None and all(fresh):
            ready = time.time_ns()
            end = ready + int(samples * gap * 1e9)
        if end is not None and time.time_ns() > end and not os.path.exists(stop):
            open(stop, "w").close()
    lat = []
    bufs = [b""] * streams
    for now, i, chunk in raw:
        bufs[i] += chunk
        while b"\n\n" in bufs[i]:
            block, bufs[i] = bufs[i].split(b"\n\n", 1)
            for line in block.split(b"\n"):
                if line.startswith(b"data: {\"data\""):
                    for v in json.loads(line[6:])["data"].split():
                        if ready < int(v) <= end:
                            lat.append((now - int(v)) / 1e6)
    return lat, own


def health_latency(agent, n):
    h = socket.create_connection(("127.0.0.1", agent.port))
    lat = []
    for _ in range(n):
        t = time.monotonic_ns()
        agent.req("GET", "/health", sock=h)
        lat.append((time.monotonic_ns() - t) / 1e6)
    h.close()
    return lat


def idle_websockets(agent, n):
    pid = agent.start("sleep 100000")
    before = health_latency(agent, 300 if not QUICK else 100)
    base = rss_kb(agent.p.pid)
    socks = [ws_open(agent.port, f"/execute/processes/{pid}/stream") for _ in range(n)]
    time.sleep(0.5)
    grown = rss_kb(agent.p.pid) - base
    lat = health_latency(agent, 300 if not QUICK else 100)
    for s in socks:
        s.close()
    agent.req("POST", f"/execute/kill/{pid}")
    return grown * 1024 / n, lat, before


def cpu_s(pid):
    """The process's user + system CPU seconds so far."""
    with open(f"/proc/{pid}/stat") as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


def gigabyte(agent, size, reps):
    """`size` bytes of output with no reader, then followed by a WebSocket, alternating
    `reps` times (one pair is at the mercy of whatever else the 2 cores run): medians of
    the run times and of the agent's own CPU seconds per run."""
    cmd = f"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {size}"   # text: JSON as is
    alone, followed, cpu_alone, cpu_followed, got = [], [], [], [], 0
    for _ in range(reps):
        c0 = cpu_s(agent.p.pid)
        alone.append(agent.wait(agent.start(cmd))["execution_time"])
        c1 = cpu_s(agent.p.pid)
        pid = agent.start(cmd)
        s = ws_open(agent.port, f"/execute/processes/{pid}/stream")
        got = 0
        while True:
            c = s.recv(1 << 20)
            if not c:
                break
            got += len(c)
        s.close()
        followed.append(agent.wait(pid)["execution_time"])
        cpu_alone.append(c1 - c0)
        cpu_followed.append(cpu_s(agent.p.pid) - c1)
    med = statistics.median
    return med(alone), med(followed), got, med(cpu_alone), med(cpu_followed)


def stalled_reader(agent, size):
    """A client that reads nothing: the agent's RSS grows no more than in a run with no
    reader (where it grows by the finished record's kept output, LIMIT_OUTPUT_BYTES)."""
    cmd = f"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {size}"
    base = rss_kb(agent.p.pid)
    agent.wait(agent.start(cmd))
    mid = rss_kb(agent.p.pid)
    pid = agent.start(cmd)
    stuck = ws_open(agent.port, f"/execute/processes/{pid}/stream")
    agent.wait(pid)
    stalled_growth = rss_kb(agent.p.pid) - mid
    stuck.close()
    return stalled_growth, mid - base


def main():
    res = {}
    a = Agent()
    try:
        lat1, own1 = latency(a, 1, 200 if QUICK else 1000, 0.005)
        lat100, own100 = latency(a, 100, 40 if QUICK else 60, 0.1)
        per_ws, health, health0 = idle_websockets(a, 1000)
        size = (256 << 20) if QUICK else (1 << 30)
        alone, followed, got, cpu_alone, cpu_followed = gigabyte(a, size, 1 if QUICK else 3)
        stalled, unread = stalled_reader(a, size)
    finally:
        a.stop()
    res = {
        "latency_ms_1": {"p50": pct(lat1, 0.5), "p99": pct(lat1, 0.99), "n": len(lat1)},
        "latency_ms_100": {"p50": pct(lat100, 0.5), "p99": pct(lat100, 0.99), "n": len(lat100)},
        "client_own_ms_100": {"p50": pct(own100, 0.5), "p99": pct(own100, 0.99)},
        "idle_ws_bytes_each": per_ws,
        "health_ms_with_1000_ws": {"p50": pct(health, 0.5), "p99": pct(health, 0.99)},
        "health_ms_before": {"p50": pct(health0, 0.5), "p99": pct(health0, 0.99)},
        "output_bytes": size, "output_s_no_reader": alone, "output_s_followed": followed,
        "followed_ratio": alone / followed if followed else None, "ws_bytes_received": got,
        "agent_cpu_s_no_reader": cpu_alone, "agent_cpu_s_followed": cpu_followed,
        "rss_growth_kib_stalled_reader": stalled, "rss_growth_kib_no_reader": unread,
        "load": os.getloadavg(),
    }
    print("| live streams (bench/streams.py) | figure | target |")
    print("|---|---|---|")
    print(f"| child write -> SSE client, 1 stream | p50 {res['latency_ms_1']['p50']:.2f} ms, p99 {res['latency_ms_1']['p99']:.2f} ms | < 1 / < 5 ms |")
    print(f"| the same, 100 streams at once | p50 {res['latency_ms_100']['p50']:.2f} ms, p99 {res['latency_ms_100']['p99']:.2f} ms | < 1 / < 5 ms |")
    print(f"| (of which the one client's own delay, select -> recv) | p50 {res['client_own_ms_100']['p50']:.2f} ms, p99 {res['client_own_ms_100']['p99']:.2f} ms | |")
    print(f"| 1000 idle WebSockets | {per_ws:.0f} B of agent RSS each | < 4 KiB |")
    print(f"| /health meanwhile | p50 {res['health_ms_with_1000_ws']['p50']:.2f} ms, p99 {res['health_ms_with_1000_ws']['p99']:.2f} ms (without them: p50 {res['health_ms_before']['p50']:.2f}, p99 {res['health_ms_before']['p99']:.2f}) | < 1 ms |")
    print(f"| {size >> 20} MiB output, followed by a WebSocket | {followed:.2f} s vs {alone:.2f} s alone ({res['followed_ratio']:.2f}x; medians of {1 if QUICK else 3}, alternating; agent CPU {cpu_followed:.2f} s vs {cpu_alone:.2f} s) | >= 0.5x |")
    print(f"| a client that stops reading | RSS +{stalled} KiB over the whole output (a run with no reader: +{unread} KiB, its kept output) | flat |")
    print(f"(load average {res['load'][0]:.1f})")
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "streams.json"), "w") as f:
        json.dump(res, f, indent=1)


main()
