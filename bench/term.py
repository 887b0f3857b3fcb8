#!/usr/bin/env python3
"""Terminal figures (issue 15), called from scripts/bench.sh: keystroke-to-echo latency on a
WS /terminal (one key sent, its echo awaited, N times: the key goes through the agent, the
PTY, bash's readline and back) and agent RSS per open terminal (100 shells attached, each
past its first prompt). Writes BENCH_OUT/term.json and term.md.

Usage: bench/term.py BIN   (TERM_KEYS=2000 TERM_SHELLS=100 to change the run)
Targets: p50 < 1 ms, p99 < 5 ms; < 100 KiB RSS per terminal beyond the kept output."""
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import websockets

KEYS = int(os.environ.get("TERM_KEYS", "2000"))
SHELLS = int(os.environ.get("TERM_SHELLS", "100"))
OUT = os.environ.get("BENCH_OUT", "build/bench")


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def open_term(port, marker):
    ws = await websockets.connect(f"ws://127.0.0.1:{port}/terminal", max_size=None)
    m = json.loads(await ws.recv())
    assert m["type"] == "session", m
    # past the first prompt: a command's output shows the shell is up and idle
    await ws.send(json.dumps({"type": "input", "data": f"echo {marker}-$((1+1))\r"}))
    seen = ""
    while f"{marker}-2" not in seen:
        seen += json.loads(await asyncio.wait_for(ws.recv(), 30)).get("data", "")
    await asyncio.sleep(0.05)
    while True:   # the prompt after it
        try:
            seen += json.loads(await asyncio.wait_for(ws.recv(), 0.2)).get("data", "")
        except asyncio.TimeoutError:
            break
    return ws, m["session"]


async def latency(port):
    ws, _ = await open_term(port, "lat")
    samples = []
    for i in range(KEYS):
        key = "abcdefghij"[i % 10]
        t0 = time.perf_counter_ns()
        await ws.send(json.dumps({"type": "input", "data": key}))
        got = ""
        while key not in got:
            got += json.loads(await ws.recv()).get("data", "")
        samples.append((time.perf_counter_ns() - t0) / 1e6)
        if i % 50 == 49:   # keep readline's line short: Ctrl-U, its redraw awaited
            await ws.send(json.dumps({"type": "input", "data": "\x15"}))
            try:
                while True:
                    await asyncio.wait_for(ws.recv(), 0.05)
            except asyncio.TimeoutError:
                pass
    await ws.close()
    samples.sort()
    q = lambda f: samples[min(len(samples) - 1, int(f * len(samples)))]
    return {"keys": KEYS, "p50_ms": q(0.50), "p90_ms": q(0.90), "p99_ms": q(0.99),
            "max_ms": samples[-1], "mean_ms": statistics.mean(samples)}


async def footprint(port, pid):
    warm, _ = await open_term(port, "warm")   # first-use allocations are not per terminal
    await asyncio.sleep(0.3)
    before = rss_kib(pid)
    terms = []
    for i in range(0, SHELLS, 10):
        terms += await asyncio.gather(*(open_term(port, f"t{i + k}") for k in range(10)))
    await asyncio.sleep(0.5)
    after = rss_kib(pid)
    # kept output: each terminal's ring (its stdout bytes, at least the ring's first 4 KiB)
    req = urllib_get(port, "/execute/processes?name=terminal")
    kept = sum(max(p["stdout_bytes"], 4096) for p in req["processes"]
               if p["process_id"] in {sid for _, sid in terms})
    for ws, _ in terms + [(warm, None)]:
        await ws.close()
    growth = after - before
    return {"terminals": SHELLS, "rss_before_kib": before, "rss_after_kib": after,
            "per_terminal_kib": growth / SHELLS,
            "kept_output_kib": kept / 1024,
            "per_terminal_beyond_output_kib": (growth - kept / 1024) / SHELLS}


def urllib_get(port, path):
    import urllib.request
    return json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}{path}"))


def main():
    bin_ = sys.argv[1]
    home = tempfile.mkdtemp(prefix="term-bench-home-")   # no dotfiles: shells start fast
    port = free_port()
    agent = subprocess.Popen([bin_, "--listen", f"127.0.0.1:{port}", "--no-auth",
                              "--workdir", home, "--max-running", str(SHELLS + 16)],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             env=dict(os.environ, HOME=home, SHELL="/bin/bash"))
    try:
        agent.stdout.readline()
        lat = asyncio.run(latency(port))
        foot = asyncio.run(footprint(port, agent.pid))
    finally:
        agent.terminate()
        agent.wait(15)
    res = {"latency": lat, "footprint": foot,
           "load": os.getloadavg(), "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    os.makedirs(OUT, exist_ok=True)
    json.dump(res, open(os.path.join(OUT, "term.json"), "w"), indent=1)
    md = ["# Terminals (bench/term.py)", "",
          f"Keystroke to echo over WS /terminal, {lat['keys']} keys, one at a time (python "
          f"websockets client, loopback): p50 {lat['p50_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms, "
          f"p99 {lat['p99_ms']:.3f} ms, max {lat['max_ms']:.3f} ms (targets p50 < 1 ms, p99 < 5 ms).",
          "",
          f"{foot['terminals']} open terminals: agent RSS {foot['rss_before_kib']} -> "
          f"{foot['rss_after_kib']} KiB, {foot['per_terminal_kib']:.1f} KiB per terminal, "
          f"{foot['per_terminal_beyond_output_kib']:.1f} KiB beyond the kept output "
          f"(target < 100 KiB).", "", f"Load average during the run: {res['load']}."]
    open(os.path.join(OUT, "term.md"), "w").write("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
