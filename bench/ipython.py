#!/usr/bin/python3
"""Python sessions bench (issue 19): `print(1)` in a warm session (POST /execute/ipython)
against the same code as a fresh process (POST /execute, language python), one agent, one
keep-alive connection each, alternating blocks so both see the same machine load.
Targets: warm round trip < 2 ms (median), >= 10x faster than /execute.

Usage: bench/ipython.py BIN   (N=500 calls per side by default; BENCH_OUT: where
ipython.md goes, default build/bench/). Prints the figures and writes them to ipython.md."""
import json
import os
import socket
import statistics
import subprocess
import sys
import time

BIN = os.path.realpath(sys.argv[1])
N = int(os.environ.get("N", "500"))
OUT = os.environ.get("BENCH_OUT", "build/bench")
BLOCK = 25
PY = subprocess.run(["sh", "-c", "PATH=/usr/bin:/bin:$PATH command -v python3"],
                    capture_output=True, text=True).stdout.strip()   # calls per block; the sides alternate block by block


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def recv(self):
        data = self.s.recv(65536)
        if not data:
            raise ConnectionError("the agent closed the connection")
        return data

    def post(self, path, body):
        raw = json.dumps(body).encode()
        self.s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(raw)}\r\n\r\n".encode() + raw)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self.recv()
        head, rest = self.buf.split(b"\r\n\r\n", 1)
        n = int([l.split(b":")[1] for l in head.split(b"\r\n")
                 if l.lower().startswith(b"content-length:")][0])
        while len(rest) < n:
            rest += self.recv()
        self.buf = rest[n:]
        status = int(head.split()[1])
        return status, json.loads(rest[:n])


def timed(conn, path, body, check):
    t = time.perf_counter()
    status, j = conn.post(path, body)
    dt = time.perf_counter() - t
    assert status == 200 and check(j), (status, j)
    return dt * 1000


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))]


def main():
    wd = os.path.join("build", "bench", "ipython-wd")
    os.makedirs(wd, exist_ok=True)
    # the same python3 for both sides, and not a shim (pyenv's is a shell script: it would
    # cost /execute a shell start per call and the session one)
    env = dict(os.environ, PATH="/usr/bin:/bin:" + os.environ.get("PATH", ""))
    agent = subprocess.Popen([BIN, "--no-auth", "--listen", "127.0.0.1:0", "--workdir", wd],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    try:
        port = int(agent.stdout.readline().decode().split(":")[-1])
        ipy, exe = Conn(port), Conn(port)
        t = time.perf_counter()
        timed(ipy, "/execute/ipython", {"code": "1"}, lambda j: j["success"])
        start_ms = (time.perf_counter() - t) * 1000
        body_i = {"code": "print(1)"}
        body_e = {"code": "print(1)", "language": "python"}
        ok = lambda j: j["stdout"] == "1\n"
        for _ in range(20):   # warm both paths
            timed(ipy, "/execute/ipython", body_i, ok)
        for _ in range(3):
            timed(exe, "/execute", body_e, ok)
        ti, te = [], []
        ne = max(BLOCK, N // 10)   # a fresh interpreter costs tens of ms: fewer of them
        while len(ti) < N or len(te) < ne:
            for _ in range(BLOCK if len(ti) < N else 0):
                ti.append(timed(ipy, "/execute/ipython", body_i, ok))
            for _ in range(BLOCK // 5 if len(te) < ne else 0):
                te.append(timed(exe, "/execute", body_e, ok))
    finally:
        agent.terminate()
        agent.wait(10)
    mi, me = statistics.median(ti), statistics.median(te)
    load = os.getloadavg()[0]
    lines = [
        "# Python sessions: warm `print(1)` vs a fresh python3",
        "",
        f"One agent, loopback, keep-alive connections, alternating blocks; load {load:.2f}, "
        f"{os.cpu_count()} CPUs; `python3` = {PY}.",
        "",
        "| path | calls | median ms | p95 ms | min ms |",
        "|---|---|---|---|---|",
        f"| POST /execute/ipython (warm session) | {len(ti)} | {mi:.3f} | {pct(ti, 0.95):.3f} | {min(ti):.3f} |",
        f"| POST /execute, language python | {len(te)} | {me:.3f} | {pct(te, 0.95):.3f} | {min(te):.3f} |",
        "",
        f"Warm session round trip: {mi:.3f} ms (target < 2 ms: {'met' if mi < 2 else 'MISSED'}); "
        f"{me / mi:.1f}x faster than /execute (target >= 10x: {'met' if me / mi >= 10 else 'MISSED'}). "
        f"A new session's first call (interpreter start, driver, IPython when installed): {start_ms:.0f} ms.",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "ipython.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
