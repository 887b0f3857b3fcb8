#!/usr/bin/env python3
"""make bench: the agent measured beside its anchors, in one run, on one machine.

Usage (scripts/bench.sh does this): bench.py AGENT_BIN
Environment: BENCH_ANCHOR (spawn_anchor binary), BENCH_PROF_BIN (unstripped -g build for perf),
RUNS (runs per figure, default 3), DUR (seconds per wrk run, default 3), BENCH_OUT (directory
for results.md, results.json and the SVG charts; default bench/).

Every figure is the median of RUNS runs with min and max, measured interleaved with its anchor
(agent, anchor, anchor, agent, ...) so drifting load from other work hits both. Throughput
ratios are agent / anchor (higher is better); size, memory and time ratios are agent / anchor
(lower is better). Servers under HTTP load run on CPU 1 and wrk on CPU 0 (two cores), so the
agent and nginx each get one core, as one nginx worker has. CPU time per request (from
/proc/PID/stat) is given beside each throughput: it is what the machine's noise changes least.
"""
import json
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.realpath(sys.argv[1])
ANCHOR = os.environ.get("BENCH_ANCHOR", "build/spawn_anchor")
DRAIN = os.environ.get("BENCH_DRAIN", "build/drain_anchor")
PROF_BIN = os.environ.get("BENCH_PROF_BIN", "")
RUNS = int(os.environ.get("RUNS", "3"))
DUR = int(os.environ.get("DUR", "3"))
OUT = os.environ.get("BENCH_OUT", "bench")
TINI = shutil.which("tini-static") or "/usr/bin/tini-static"
SECRET = "bench-secret-%d" % os.getpid()
HZ = os.sysconf("SC_CLK_TCK")
WORK = tempfile.mkdtemp(prefix="sandbox-bench-")
ENV = dict(os.environ, SANDBOX_AGENT_JWT_SECRET=SECRET)
T0 = time.monotonic()
STARTED = []   # every agent and nginx: stopped at exit whatever happens
R = {"runs": RUNS, "dur": DUR, "figures": {}, "scale": {}, "notes": []}

# 1000 live processes need 2000 pipe descriptors in the agent
_soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(_hard, 16384), _hard))


def log(*a):
    print("bench: [%3ds]" % (time.monotonic() - T0), *a, file=sys.stderr, flush=True)


def med(xs):
    return statistics.median(xs) if xs else None


def stat3(xs):
    xs = [x for x in xs if x is not None]
    return {"median": med(xs), "min": min(xs) if xs else None, "max": max(xs) if xs else None, "runs": xs}


# ---- processes ----

def proc_status(pid, key):
    """kB value of a /proc/PID/status line (VmRSS, VmHWM)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return None


def cpu_ticks(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])   # utime + stime


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


TOKEN = subprocess.run([BIN, "token", "--ttl", "7200"], env=ENV, capture_output=True, text=True,
                       check=True).stdout.strip()
AUTH = "Authorization: Bearer " + TOKEN


class Agent:
    def __init__(self, *flags, cpus=None, binary=None):
        out = os.path.join(WORK, "agent-%d.out" % time.monotonic_ns())
        cmd = (["taskset", "-c", cpus] if cpus else []) + [
            binary or BIN, "--listen", "127.0.0.1:0", "--workdir", WORK, *flags]
        self.p = subprocess.Popen(cmd, stdout=open(out, "w"), stderr=subprocess.DEVNULL, env=ENV)
        STARTED.append(self.p)
        self.pid = self.p.pid   # taskset execs the agent in place
        deadline = time.monotonic() + 10
        while True:
            m = re.search(r"listening on ([\d.]+):(\d+)", open(out).read())
            if m:
                break
            if time.monotonic() > deadline or self.p.poll() is not None:
                raise RuntimeError("agent did not start: " + " ".join(cmd))
            time.sleep(0.005)
        self.port = int(m.group(2))
        self.base = "http://127.0.0.1:%d" % self.port
        self.sock = None

    def request(self, method, path, body=None):
        """One request on a kept-alive connection. Returns (status, body bytes)."""
        data = json.dumps(body).encode() if body is not None else b""
        msg = ("%s %s HTTP/1.1\r\nHost: b\r\n%s\r\nContent-Length: %d\r\n\r\n" %
               (method, path, AUTH, len(data))).encode() + data
        for attempt in (0, 1):
            if self.sock is None:
                self.sock = socket.create_connection(("127.0.0.1", self.port))
            try:
                self.sock.sendall(msg)
                st, b = read_response(self.sock)
                return st, b
            except (ConnectionError, ValueError):
                self.sock.close()
                self.sock = None
                if attempt:
                    raise

    def json(self, method, path, body=None):
        st, b = self.request(method, path, body)
        return st, json.loads(b) if b else None

    def submit(self, bodies):
        """Pipelines POST /commands/background requests on one connection. Returns ids."""
        s = socket.create_connection(("127.0.0.1", self.port))
        ids = []
        for i in range(0, len(bodies), 100):   # 100 at a time: no deadlock on full buffers
            chunk = b""
            for b in bodies[i:i + 100]:
                data = json.dumps(b).encode()
                chunk += ("POST /commands/background HTTP/1.1\r\nHost: b\r\n%s\r\n"
                          "Content-Length: %d\r\n\r\n" % (AUTH, len(data))).encode() + data
            s.sendall(chunk)
            for _ in bodies[i:i + 100]:
                st, body = read_response(s)
                if st != 200:
                    raise RuntimeError("submit: %d %r" % (st, body[:200]))
                ids.append(json.loads(body)["process_id"])
        s.close()
        return ids

    def count(self, query):
        st, j = self.json("GET", "/execute/processes?output=false&" + query)
        return j["count"]

    def wait_idle(self, timeout=120, poll=0.005):
        """Until nothing is running or queued."""
        deadline = time.monotonic() + timeout
        while self.count("status=running") or self.count("status=queued"):
            if time.monotonic() > deadline:
                raise RuntimeError("processes did not finish")
            time.sleep(poll)

    def rss(self):
        return proc_status(self.pid, "VmRSS")

    def hwm(self):
        return proc_status(self.pid, "VmHWM")

    def reset_hwm(self):
        with open("/proc/%d/clear_refs" % self.pid, "w") as f:
            f.write("5")

    def stop(self, sig=signal.SIGTERM):
        if self.sock:
            self.sock.close()
        t = time.monotonic()
        self.p.send_signal(sig)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        return time.monotonic() - t


_buffers = {}


def read_response(sock):
    data = _buffers.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        c = sock.recv(65536)
        if not c:
            raise ConnectionError("closed")
        data += c
    head, rest = data.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    n = int(m.group(1)) if m else 0
    while len(rest) < n:
        c = sock.recv(1 << 20)
        if not c:
            raise ConnectionError("closed")
        rest += c
    if rest[n:]:
        _buffers[sock.fileno()] = rest[n:]
    return status, rest[:n]


class Nginx:
    def __init__(self, files, cpus="1"):
        self.port = free_port()
        root = os.path.join(WORK, "nginx")
        os.makedirs(root, exist_ok=True)
        # nginx's worker runs as nobody: the files must be readable (mkdtemp makes 0700)
        os.chmod(WORK, 0o755)
        os.chmod(root, 0o755)
        locs = ""
        for path, data in files.items():
            fn = os.path.join(root, path.strip("/").replace("/", "_") + ".json")
            open(fn, "wb").write(data)
            os.chmod(fn, 0o644)
            locs += "location = %s { default_type application/json; alias %s; }\n" % (path, fn)
        conf = os.path.join(root, "nginx.conf")
        open(conf, "w").write("""worker_processes 1;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    open_file_cache max=64;
    keepalive_requests 100000000;
    server { listen 127.0.0.1:%d; %s }
}
""" % (root, root, self.port, locs))
        self.p = subprocess.Popen(["taskset", "-c", cpus, "nginx", "-c", conf, "-p", root],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.p)
        self.base = "http://127.0.0.1:%d" % self.port
        deadline = time.monotonic() + 5
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port)).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        kids = []
        while not kids:   # the master forks its worker after it listens
            kids = open("/proc/%d/task/%d/children" % (self.p.pid, self.p.pid)).read().split()
            if time.monotonic() > deadline:
                raise RuntimeError("nginx has no worker")
            time.sleep(0.01)
        self.worker = int(kids[0])

    def stop(self):
        self.p.send_signal(signal.SIGQUIT)
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()


# ---- wrk ----

def _dur(s):
    m = re.match(r"([\d.]+)(us|ms|s|m)", s)
    v = float(m.group(1))
    return v * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[m.group(2)]


def wrk(url, conns, dur=None, script=None, latency=False, pid=None, cpus="0"):
    """req/s, requests, errors, latency percentiles (ms), server CPU us per request."""
    cmd = (["taskset", "-c", cpus] if cpus else []) + [
        "wrk", "-t1", "-c%d" % conns, "-d%ds" % (dur or DUR), "-H", AUTH]
    if script:
        cmd += ["-s", script]
    if latency:
        cmd.append("--latency")
    t0 = cpu_ticks(pid) if pid else None
    out = subprocess.run(cmd + [url], capture_output=True, text=True).stdout
    res = {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
           "requests": int(re.search(r"(\d+) requests in", out).group(1))}
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    err = re.search(r"Socket errors: (.*)", out)
    res["errors"] = (int(bad.group(1)) if bad else 0)
    if err:
        res["errors"] += sum(int(x) for x in re.findall(r"\d+", err.group(1)))
    if latency:
        for p in ("50", "99"):
            m = re.search(r"^\s+%s%%\s+(\S+)" % p, out, re.M)
            res["p" + p] = _dur(m.group(1)) if m else None
    if pid:
        res["cpu_us"] = (cpu_ticks(pid) - t0) / HZ * 1e6 / max(res["requests"], 1)
    return res


def figure(key, name, agent, anchor, anchor_name, unit, target=None, higher=True, note="",
           short=None):
    """Stores a figure: agent and anchor as stat3 dicts; ratio = agent median / anchor median.
    short: the chart's label."""
    f = {"name": name, "agent": agent, "anchor": anchor, "anchor_name": anchor_name,
         "unit": unit, "target": target, "higher": higher, "note": note, "short": short or name}
    if anchor and anchor.get("median") and agent.get("median") is not None:
        f["ratio"] = agent["median"] / anchor["median"]
    R["figures"][key] = f
    return f


def interleave(n, *fns):
    """Runs fns n times each, alternating their order per round. Returns lists per fn."""
    out = [[] for _ in fns]
    for r in range(n):
        order = list(range(len(fns)))
        if r % 2:
            order.reverse()
        for i in order:
            out[i].append(fns[i]())
    return out


# ---- 1. HTTP ----

def bench_http():
    log("HTTP: agent and nginx on CPU 1, wrk on CPU 0")
    a = Agent(cpus="1")
    a.submit([{"command": "echo record %d" % i} for i in range(1, 11)])
    a.wait_idle()
    health = a.request("GET", "/health")[1]
    lst = a.request("GET", "/execute/processes")[1]
    R["list_bytes"] = len(lst)
    R["health_bytes"] = len(health)
    n = Nginx({"/health": health, "/execute/processes": lst})
    for key, path, label in (("health", "/health", "GET /health"),
                             ("list", "/execute/processes",
                              "GET /execute/processes (10 records, authenticated)")):
        ra, rn = interleave(RUNS, lambda: wrk(a.base + path, 50, pid=a.pid),
                            lambda: wrk(n.base + path, 50, pid=n.worker))
        for r in ra + rn:
            if r["errors"]:
                R["notes"].append("%s: %d errors in a run" % (label, r["errors"]))
        figure("http_" + key, label + ", 50 connections, req/s", stat3([r["rps"] for r in ra]),
               stat3([r["rps"] for r in rn]), "nginx (1 worker)", "req/s",
               target=1.0 if key == "health" else 0.9,
               short=("GET /health" if key == "health" else "GET list, 10 records, auth") +
               " vs nginx")
        figure("cpu_" + key, label + ", CPU per request", stat3([r["cpu_us"] for r in ra]),
               stat3([r["cpu_us"] for r in rn]), "nginx (1 worker)", "us", higher=False)
        for c in (1, 200):
            ra, rn = interleave(RUNS, lambda: wrk(a.base + path, c, dur=2, latency=True),
                                lambda: wrk(n.base + path, c, dur=2, latency=True))
            for p in ("p50", "p99"):
                figure("lat_%s_%d_%s" % (key, c, p), "%s, %d connection%s, latency %s" %
                       (label, c, "s" if c > 1 else "", p), stat3([r[p] for r in ra]),
                       stat3([r[p] for r in rn]), "nginx (1 worker)", "ms", higher=False)
        log("  %s done" % label)
    n.stop()
    R["rss_after_http_kb"] = a.rss()
    a.stop()


# ---- 2. spawn ----

def anchor_rate(n=1000, loops=1, cpus=None):
    """(runs/s over all loops, mean us inside posix_spawn)."""
    t = time.monotonic()
    pin = ["taskset", "-c", cpus] if cpus else []
    ps = [subprocess.Popen(pin + [ANCHOR, str(n)], stdout=subprocess.PIPE, text=True)
          for _ in range(loops)]
    outs = [p.communicate()[0].split() for p in ps]
    return n * loops / (time.monotonic() - t), statistics.mean(float(o[3]) for o in outs)


def bench_spawn():
    log("spawn: POST /commands/run {\"command\":\"true\"} vs posix_spawn+pipes+waitpid loop")
    script = os.path.join(WORK, "run.lua")
    open(script, "w").write('wrk.method = "POST"\nwrk.body = \'{"command":"true"}\'\n'
                            'wrk.headers["Content-Type"] = "application/json"\n')
    # Unpinned (as users run it: the targets) and pinned (agent or bare loop on CPU 1, wrk on
    # CPU 0; children inherit the CPU), alternating, so drifting load hits every side.
    a = Agent()
    ap = Agent(cpus="1")
    r1, r2, an1, an2, p1, pn1 = interleave(
        RUNS, lambda: wrk(a.base + "/commands/run", 1, script=script, cpus=None, pid=a.pid),
        lambda: wrk(a.base + "/commands/run", 2, script=script, cpus=None, pid=a.pid),
        lambda: anchor_rate(1000), lambda: anchor_rate(1000, loops=2),
        lambda: wrk(ap.base + "/commands/run", 1, script=script, cpus="0", pid=ap.pid),
        lambda: anchor_rate(1000, cpus="1"))
    ap.stop()
    figure("spawn_pinned_1", "pinned: POST /commands/run `true`, 1 connection (agent on CPU 1, "
           "wrk on CPU 0), runs/s", stat3([r["rps"] for r in p1]),
           stat3([x[0] for x in pn1]), "bare loop on CPU 1", "runs/s", note="pinned context")
    figure("spawn_pinned_cpu", "pinned: agent CPU per run", stat3([r["cpu_us"] for r in p1]),
           None, "", "us", higher=False)
    for r in r1 + r2:
        if r["errors"]:
            R["notes"].append("commands/run: %d errors in a run" % r["errors"])
    a.stop()
    anchor = stat3([x[0] for x in an1])
    an2 = [x[0] for x in an2]
    spawn_us = stat3([x[1] for x in an1])
    figure("spawn_1", "POST /commands/run `true`, 1 connection, runs/s",
           stat3([r["rps"] for r in r1]), anchor, "bare loop (1)", "runs/s", target=0.9,
           short="run `true`, 1 connection vs bare loop")
    figure("spawn_2", "POST /commands/run `true`, 2 connections, runs/s",
           stat3([r["rps"] for r in r2]), anchor, "bare loop (1)", "runs/s", target=1.6,
           short="run `true`, 2 connections vs bare loop")
    figure("spawn_anchor_2", "bare loop, 2 in parallel (what 2 cores allow), runs/s",
           stat3(an2), anchor, "bare loop (1)", "runs/s",
           note="context for the 2-connection target")
    cpu = stat3([r["cpu_us"] for r in r1])
    figure("spawn_cpu", "POST /commands/run `true`: agent CPU per run",
           cpu, None, "", "us", higher=False)
    figure("spawn_call", "time inside posix_spawn per run (until the child has exec'd: "
           "the loop waits)", spawn_us, None, "", "us", higher=False,
           note="measured in the bare loop")
    bound = stat3([1e6 / (cpu["median"] + spawn_us["median"])])
    figure("spawn_bound", "bound for any number of connections: 1 / (agent CPU per run + "
           "time inside posix_spawn)", bound, anchor, "bare loop (1)", "runs/s",
           note="the single loop's serial part")

    log("spawn: 1000 background `true`, submitted pipelined, until all completed")
    runs, rss_done, rss_listed, idle = [], [], [], []
    for r in range(RUNS):
        a = Agent()
        a.request("GET", "/health")
        time.sleep(0.05)
        idle.append(a.rss())
        t = time.monotonic()
        a.submit([{"command": "true"}] * 1000)
        a.wait_idle(poll=0.002)
        runs.append(1000 / (time.monotonic() - t))
        time.sleep(0.05)
        rss_done.append(a.rss())   # before any list renders (and keeps) the records
        a.request("GET", "/execute/processes")
        rss_listed.append(a.rss())
        done = a.count("status=completed")
        if done != 1000:
            R["notes"].append("background: %d of 1000 completed" % done)
        a.stop()
    figure("background", "1000 background `true`: submitted to all completed, runs/s",
           stat3(runs), anchor, "bare loop (1)", "runs/s")
    R["rss_idle_fresh"] = stat3(idle)
    R["rss_1000_done"] = stat3(rss_done)
    R["rss_1000_listed"] = stat3(rss_listed)


# ---- 3. output ----

def bench_output():
    log("output: 1 GB through a background command vs the drain parent vs | cat > /dev/null; "
        "pinned (writer on CPU 0, reader on CPU 1) and unpinned")
    # Pinned: left to the scheduler, writer and reader share or swap cores at random and the
    # anchors alone swung from 1.3 to 3.8 GB/s within one run. Unpinned is how users run it
    # (the target). The drain parent (bench/drain_anchor.c) is the anchor: it spawns the same
    # child and reads its pipe with poll() + read() into a 1 MiB ring, as the agent must;
    # `| cat` (siblings in a pipeline, scheduled differently) is kept for context.
    head = "head -c 1000000000 /dev/zero"
    res = {}
    for mode in ("pinned", "unpinned"):
        pin = mode == "pinned"
        cmd = ("taskset -c 0 " if pin else "") + head
        a = Agent(cpus="1" if pin else None)

        def agent_run(r=[0]):
            r[0] += 1
            a.reset_hwm()
            a.submit([{"command": cmd, "name": "out%d" % r[0]}])
            # Polled rarely: every request is work for the agent's core while it reads. The
            # record's own start-to-exit time (ms) is the figure, as the drain parent's is
            # its own spawn to waitpid.
            while a.count("status=completed&name=out%d" % r[0]) == 0:
                time.sleep(0.02)
            st, j = a.json("GET", "/execute/processes?output=false&name=out%d" % r[0])
            rec = j["processes"][0]
            if rec["stdout_bytes"] != 10 ** 9:
                R["notes"].append("output: stdout_bytes %s" % rec["stdout_bytes"])
            return 1.0 / max(rec["execution_time"], 0.001), a.hwm()

        def drain_run():
            out = subprocess.run((["taskset", "-c", "1"] if pin else []) + [DRAIN, cmd],
                                 check=True, capture_output=True, text=True).stdout.split()
            return float(out[2])

        def cat_run():
            t = time.monotonic()
            subprocess.run(["sh", "-c", cmd + " | %scat > /dev/null" %
                            ("taskset -c 1 " if pin else "")], check=True)
            return 1.0 / (time.monotonic() - t)

        res[mode] = interleave(max(RUNS, 5), agent_run, drain_run, cat_run)
        a.stop()
    for mode in ("unpinned", "pinned"):
        ra, rd, rc = res[mode]
        k = "output" if mode == "unpinned" else "output_pinned"
        lbl = "" if mode == "unpinned" else "pinned: "
        figure(k, lbl + "1 GB stdout through the agent, GB/s", stat3([x[0] for x in ra]),
               stat3(rd), "drain parent: poll + read into 1 MiB", "GB/s",
               target=0.9 if mode == "unpinned" else None,
               short="1 GB of output vs drain parent", note="" if mode == "unpinned" else "pinned")
        figure(k + "_cat", lbl + "1 GB stdout through the agent vs `| cat`, GB/s",
               stat3([x[0] for x in ra]), stat3(rc), "`| cat > /dev/null`", "GB/s",
               note="context: siblings in a pipeline")
        figure(k + "_hwm", lbl + "agent peak RSS (VmHWM) while 1 GB passes",
               stat3([x[1] / 1024 for x in ra]), None, "", "MiB",
               target=16 if mode == "unpinned" else None, higher=False)


# ---- 4. footprint ----

def start_time(cmd, port=None):
    """Seconds from Popen to the first /health answer (port) or to exit (no port)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    if port is None:
        p.wait()
        return time.perf_counter() - t
    req = b"GET /health HTTP/1.1\r\nHost: b\r\n\r\n"
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(req)
            if s.recv(64).startswith(b"HTTP/1.1 200"):
                el = time.perf_counter() - t
                s.close()
                break
            s.close()
        except OSError:
            pass
    p.send_signal(signal.SIGTERM)
    p.wait()
    return el


def bench_footprint():
    log("footprint: size, RSS, start time; tini-static beside")
    size = os.stat(BIN).st_size
    tsize = os.stat(TINI).st_size
    figure("size", "binary size (static, stripped)", stat3([size / 1024]), stat3([tsize / 1024]),
           "tini-static (Debian)", "KiB", target=150, higher=False)
    if "rss_idle_fresh" not in R:   # the spawn step measures it on its fresh agents
        xs = []
        for _ in range(RUNS):
            a = Agent()
            a.request("GET", "/health")
            time.sleep(0.05)
            xs.append(a.rss())
            a.stop()
        R["rss_idle_fresh"] = R["rss_1000_done"] = R["rss_1000_listed"] = stat3(xs)
        R["notes"].append("spawn step skipped: RSS after 1000 records not measured")
    idle = R["rss_idle_fresh"]
    trss = []
    for _ in range(RUNS):
        p = subprocess.Popen([TINI, "-s", "--", "sleep", "30"])
        time.sleep(0.1)
        trss.append(proc_status(p.pid, "VmRSS"))
        p.kill()
        p.wait()
    figure("rss_idle", "RSS idle (after the first request)", idle, stat3(trss),
           "tini-static -s sleep", "KiB", target=1024, higher=False)
    figure("rss_1000", "RSS after 1000 finished records", R["rss_1000_done"], stat3(trss),
           "tini-static -s sleep", "KiB", higher=False)
    figure("rss_1000_listed", "RSS after 1000 finished records, listed once (render cache)",
           R["rss_1000_listed"], stat3(trss), "tini-static -s sleep", "KiB", higher=False)
    ta, tt = [], []
    for r in range(max(RUNS, 3) * 7):
        port = free_port()
        if r % 2:
            tt.append(start_time([TINI, "-s", "--", "/bin/true"]) * 1e3)
        ta.append(start_time([BIN, "--listen", "127.0.0.1:%d" % port, "--workdir", WORK], port) * 1e3)
        if not r % 2:
            tt.append(start_time([TINI, "-s", "--", "/bin/true"]) * 1e3)
    figure("start", "start to first /health answer", stat3(ta), stat3(tt),
           "tini-static -s true (start to exit)", "ms", target=5, higher=False)


# ---- 5. scale ----

def bench_scale():
    for n in (10, 100, 1000):
        log("scale: %d live `sleep 600`" % n)
        a = Agent("--max-running", "2000")
        a.request("GET", "/health")
        rss0 = a.rss()
        t = time.monotonic()
        ids = a.submit([{"command": "sleep 600", "timeout": 0}] * n)
        submit_s = time.monotonic() - t
        while a.count("status=running") < n:
            time.sleep(0.01)
        time.sleep(0.2)
        c0 = cpu_ticks(a.pid)
        time.sleep(1)
        idle_cpu = (cpu_ticks(a.pid) - c0) / HZ
        s = {"n": n, "submit_per_s": n / submit_s, "rss_kb": a.rss(), "rss0_kb": rss0,
             "idle_cpu_pct": idle_cpu * 100}
        s["health_rps"] = stat3([wrk(a.base + "/health", 50, dur=2)["rps"] for _ in range(RUNS)])
        s["list_p50"] = stat3([wrk(a.base + "/execute/processes", 1, dur=2, latency=True)["p50"]
                               for _ in range(RUNS)])
        s["get_p50"] = stat3([wrk(a.base + "/execute/processes/" + ids[-1], 1, dur=1,
                                  latency=True)["p50"] for _ in range(RUNS)])
        s["shutdown_s"] = a.stop()
        R["scale"]["live_%d" % n] = s
    for n in (10, 100, 1000):
        log("scale: %d kept records" % n)
        a = Agent()
        a.request("GET", "/health")
        rss0 = a.rss()
        ids = a.submit([{"command": "echo record %d" % i} for i in range(n)])
        a.wait_idle()
        time.sleep(0.05)
        s = {"n": n, "rss0_kb": rss0, "rss_kb": a.rss()}
        s["list_p50"] = stat3([wrk(a.base + "/execute/processes", 1, dur=2, latency=True)["p50"]
                               for _ in range(RUNS)])
        s["list_short_p50"] = stat3([wrk(a.base + "/execute/processes?output=false", 1, dur=2,
                                         latency=True)["p50"] for _ in range(RUNS)])
        s["rss_listed_kb"] = a.rss()   # before /health at 50 connections adds their buffers
        s["get_p50"] = stat3([wrk(a.base + "/execute/processes/" + ids[-1], 1, dur=1,
                                  latency=True)["p50"] for _ in range(RUNS)])
        s["health_rps"] = stat3([wrk(a.base + "/health", 50, dur=2)["rps"] for _ in range(RUNS)])
        s["list_bytes"] = len(a.request("GET", "/execute/processes")[1])
        a.stop()
        R["scale"]["records_%d" % n] = s


# ---- profile ----

def bench_profile():
    if not PROF_BIN or not os.path.exists(PROF_BIN) or not shutil.which("perf"):
        R["notes"].append("no profile: perf or the -g build missing")
        return
    log("profile: perf record -g on the -g build while wrk lists 10 records")
    a = Agent(cpus="1", binary=PROF_BIN)
    a.submit([{"command": "echo record %d" % i} for i in range(1, 11)])
    a.wait_idle()
    data = os.path.join(WORK, "perf.data")
    rec = subprocess.Popen(["perf", "record", "-g", "-o", data, "-p", str(a.pid), "--",
                            "sleep", str(DUR)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wrk(a.base + "/execute/processes", 50, dur=DUR + 1)
    rec.wait()
    a.stop()
    rep = subprocess.run(["perf", "report", "-i", data, "--no-children", "--stdio", "--sort",
                          "dso,sym"], capture_output=True, text=True).stdout
    lines = [l for l in rep.splitlines() if re.match(r"\s+\d+\.\d+%", l)]
    kernel = sum(float(l.split("%")[0]) for l in lines if "[kernel" in l)
    # inclusive time of the agent's own functions: which request step costs what
    inc = subprocess.run(["perf", "report", "-i", data, "--children", "--stdio", "--sort", "sym",
                          "-g", "none"], capture_output=True, text=True).stdout
    mine = ("api_", "conn_", "jwt_", "http_", "json_", "put_record", "log_", "buf_", "authorize",
            "route_", "server_", "loop_", "b64url", "br_sha2")
    own = [re.sub(r"\s+", " ", l.strip()) for l in inc.splitlines()
           if re.match(r"\s+\d+\.\d+%", l) and "[.]" in l and
           l.split("[.]")[1].strip().startswith(mine)]
    R["profile"] = {"top": [re.sub(r"\s+", " ", l.strip()) for l in lines[:15]],
                    "kernel_pct": kernel, "inclusive": own[:14]}


# ---- container (another engineer's script) ----

def bench_container():
    script = "bench/container.sh"
    if not os.path.exists(script):
        return
    if subprocess.run(["podman", "info"], capture_output=True).returncode != 0:
        R["notes"].append("bench/container.sh skipped: podman does not work here")
        return
    log("container: bench/container.sh (writes bench/container.md)")
    md = os.path.join(OUT, "container.md")
    try:
        p = subprocess.run(["bash", script, BIN], capture_output=True, text=True, timeout=240,
                           env=dict(os.environ, OUT=md))
        if p.returncode:
            R["notes"].append("bench/container.sh exited %d: %s" %
                              (p.returncode, p.stderr.strip()[-300:]))
        elif os.path.exists(md):
            R["container"] = open(md).read().strip().replace("## Container", "Container", 1)
    except subprocess.TimeoutExpired:
        R["notes"].append("bench/container.sh took over 240 s")


# ---- report ----

def fmt(v, unit=""):
    if v is None:
        return "-"
    if abs(v) >= 1000:
        s = "%.0f" % v
    elif abs(v) >= 100:
        s = "%.0f" % v
    elif abs(v) >= 10:
        s = "%.1f" % v
    elif abs(v) >= 1:
        s = "%.2f" % v
    else:
        s = "%.3f" % v
    return s


def cell(st):
    if not st or st.get("median") is None:
        return "-"
    if len(st["runs"]) > 1:
        return "%s (%s-%s)" % (fmt(st["median"]), fmt(st["min"]), fmt(st["max"]))
    return fmt(st["median"])


def verdict(f):
    """(met, text) for a figure with a target: ratio targets for throughput, absolute
    targets for sizes/times (target given in the figure's unit)."""
    t = f["target"]
    if t is None:
        return None, ""
    absolute = f["unit"] in ("KiB", "MiB", "ms")
    v = f["agent"]["median"] if absolute else f.get("ratio")
    if v is None:
        return False, "no data"
    met = v < t if absolute else v >= t
    if absolute:
        txt = "< %s %s" % (fmt(t), f["unit"])
        margin = (t - v) / t * 100
    else:
        txt = ">= %sx" % fmt(t)
        margin = (v - t) / t * 100
    return met, "%s: %s (%+.0f%%)" % (txt, "met" if met else "**not met**", margin)


def svg_ratios(path):
    rows = [(k, f) for k, f in R["figures"].items() if f["target"] is not None and f.get("ratio")
            and f["unit"] not in ("KiB", "MiB", "ms")]
    w, lh, left = 760, 38, 330
    h = 60 + lh * len(rows)
    ctx2 = R["figures"].get("spawn_anchor_2", {}).get("ratio") or 0
    xmax = max([2.0, ctx2 * 1.3] + [f["ratio"] * 1.1 for _, f in rows] +
               [f["target"] * 1.2 for _, f in rows])
    sx = lambda v: left + (w - left - 40) * v / xmax
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
         'font-size="12">' % (w, h),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="20" font-size="14" font-weight="bold">sandbox-agent throughput / '
         'anchor (same run, median); tick = target</text>']
    for x in range(0, int(xmax) + 1):
        o.append('<line x1="%.1f" y1="30" x2="%.1f" y2="%d" stroke="#ddd"/>' % (sx(x), sx(x), h - 20))
        o.append('<text x="%.1f" y="%d" text-anchor="middle" fill="#666">%dx</text>' % (sx(x), h - 6, x))
    for i, (k, f) in enumerate(rows):
        y = 40 + i * lh
        met, _ = verdict(f)
        color = "#3a7" if met else "#d54"
        label = f["short"].replace("`", "")
        o.append('<text x="%d" y="%d" text-anchor="end">%s</text>' % (left - 8, y + 15, esc(label)))
        o.append('<rect x="%d" y="%d" width="%.1f" height="20" fill="%s"/>' %
                 (left, y + 2, sx(f["ratio"]) - left, color))
        o.append('<text x="%.1f" y="%d">%.2fx</text>' % (sx(f["ratio"]) + 4, y + 16, f["ratio"]))
        tx = sx(f["target"])
        o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="black" stroke-width="2"/>' %
                 (tx, y - 1, tx, y + 25))
        ctx = R["figures"].get("spawn_anchor_2") if k == "spawn_2" else None
        if ctx and ctx.get("ratio"):   # what two bare loops reached on this machine, this run
            cx = sx(ctx["ratio"])
            o.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#555" stroke-width="2" '
                     'stroke-dasharray="3,2"/>' % (cx, y - 1, cx, y + 25))
            o.append('<text x="%.1f" y="%d" fill="#555" font-size="10">2 bare loops %.2fx</text>'
                     % (max(tx, cx) + 6, y + 30, ctx["ratio"]))
    o.append("</svg>")
    open(path, "w").write("\n".join(o) + "\n")


def svg_footprint(path):
    f = R["figures"]
    if "size" not in f:
        return
    groups = [("binary KiB", f["size"]), ("RSS idle KiB", f["rss_idle"]),
              ("RSS, 1000 records KiB", f["rss_1000"]),
              ("RSS, 1000 listed KiB", f["rss_1000_listed"])]
    vmax_t = max(g["target"] or 0 for _, g in groups)
    w, h, left, top = 760, 300, 60, 40
    vmax = max([vmax_t] + [max(g["agent"]["median"], g["anchor"]["median"])
                           for _, g in groups]) * 1.15
    bw = (w - left - 20) / len(groups)
    sy = lambda v: (h - 50) - (h - 50 - top) * v / vmax
    o = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
         'font-size="12">' % (w, h),
         '<rect width="100%" height="100%" fill="white"/>',
         '<text x="10" y="20" font-size="14" font-weight="bold">Footprint: sandbox-agent '
         '(blue) beside tini-static, the PID-1 anchor (grey); dashed: target</text>']
    for i, (name, g) in enumerate(groups):
        x = left + i * bw
        for j, (v, color) in enumerate(((g["agent"]["median"], "#37c"), (g["anchor"]["median"], "#999"))):
            bx = x + 20 + j * (bw / 2 - 15)
            o.append('<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>' %
                     (bx, sy(v), bw / 2 - 25, sy(0) - sy(v), color))
            o.append('<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>' %
                     (bx + (bw / 2 - 25) / 2, sy(v) - 4, fmt(v)))
        o.append('<text x="%.1f" y="%d" text-anchor="middle">%s</text>' % (x + bw / 2, h - 30, name))
        if g["target"]:
            ty = sy(g["target"])
            o.append('<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#d54" '
                     'stroke-dasharray="4,3"/>' % (x + 10, ty, x + bw - 10, ty))
            o.append('<text x="%.1f" y="%.1f" fill="#d54" text-anchor="end">target %s</text>' %
                     (x + bw - 10, ty - 3, fmt(g["target"])))
    o.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="black"/>' % (left, sy(0), w - 20, sy(0)))
    o.append("</svg>")
    open(path, "w").write("\n".join(o) + "\n")


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def machine():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(open("/proc/meminfo").readline().split()[1]) / 1048576
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cores": os.cpu_count(), "mem_gib": round(mem), "kernel": os.uname().release,
            "commit": commit + (" (+ uncommitted changes)" if dirty else ""),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load_start": R.get("load_start"), "load_end": os.getloadavg()}


def report():
    m = R["machine"] = machine()
    F = R["figures"]
    L = []
    L.append("# sandbox-agent benchmarks\n")
    L.append("Generated by `make bench` (scripts/bench.sh, bench/bench.py) on %s, commit %s." %
             (m["date"], m["commit"]))
    L.append("Machine: %s, %d cores, %d GiB, kernel %s. Load average (1/5/15 min) at start "
             "%.2f / %.2f / %.2f, at end %.2f / %.2f / %.2f: the machine is shared, so every "
             "figure is taken beside its anchor in the same run." %
             ((m["cpu"], m["cores"], m["mem_gib"], m["kernel"]) + tuple(m["load_start"]) +
              tuple(m["load_end"])))
    L.append("Each figure: median of %d runs (min-max in brackets); wrk -t1, %d s per throughput "
             "run, 2 s per latency run. The run took %.0f s.\n" % (RUNS, DUR, R["elapsed"]))
    L.append("![ratios](ratios.svg)\n")
    L.append("## Targets at a glance\n")
    L.append("| figure | agent | anchor | ratio | target |")
    L.append("|---|---|---|---|---|")
    for k, f in F.items():
        if f["target"] is None:
            continue
        met, txt = verdict(f)
        L.append("| %s | %s %s | %s | %s | %s |" % (
            f["name"], cell(f["agent"]), f["unit"],
            ("%s (%s)" % (cell(f["anchor"]), f["anchor_name"])) if f["anchor"] else "-",
            ("%.2fx" % f["ratio"]) if f.get("ratio") else "-", txt))
    sections = [
        ("HTTP", lambda k: k.startswith(("http_", "cpu_", "lat_"))),
        ("Spawn", lambda k: k.startswith(("spawn", "background"))),
        ("Output", lambda k: k.startswith("output")),
        ("Footprint", lambda k: k.startswith(("size", "rss", "start"))),
    ]
    notes = {
        "HTTP": "nginx serves the same bytes (%d-byte /health, %d-byte list) from files, one "
                "worker, access_log off, sendfile, open_file_cache, unlimited keep-alive requests (a "
                "tuned anchor); both servers pinned to CPU 1, wrk to CPU 0, the same "
                "request bytes (with the bearer token) to both. Latency and CPU ratios: lower "
                "is better." % (R.get("health_bytes", 0), R.get("list_bytes", 0)),
        "Spawn": "Unpinned (the targets), and pinned for context (agent or bare loop on CPU 1, "
                 "wrk on CPU 0), all alternating in one run. The anchor (bench/spawn_anchor.c, musl -static -O2) runs what the agent runs "
                 "(`/bin/sh -c true`) with the agent's spawn attributes (own session, reset "
                 "signals, stdin /dev/null, stdout and stderr on pipes), reads both pipes to "
                 "EOF and waits, in a loop. Background: 1000 submissions pipelined on one "
                 "connection, timed until the last one completed (128 run at once, the rest "
                 "queue).",
        "Output": "`head -c 1000000000 /dev/zero` as a background command, timed by the "
                  "record's own `execution_time` (spawn to exit, output drained; polled every "
                  "20 ms), against the drain parent (bench/drain_anchor.c: spawns the same "
                  "child with the agent's attributes and reads its pipes with poll() + read() "
                  "into a 1 MiB ring, timed spawn to waitpid) and, for context, `| cat > "
                  "/dev/null` in a shell timed from start to exit. Unpinned (the targets) and "
                  "pinned alike (`head` on CPU 0, the agent, drain parent or `cat` on CPU 1), "
                  "all three alternating. VmHWM is reset (clear_refs) before each run.",
        "Footprint": "RSS from /proc/PID/status VmRSS. Start: from fork+exec (Python's Popen) "
                     "to the first 200 answer on /health, connecting in a tight loop; the tini "
                     "anchor is `tini-static -s /bin/true` from start to exit.",
    }
    for title, pick in sections:
        L.append("\n## %s\n" % title)
        L.append(notes[title] + "\n")
        L.append("| figure | agent | anchor | ratio | target |")
        L.append("|---|---|---|---|---|")
        for k, f in F.items():
            if not pick(k):
                continue
            met, txt = verdict(f)
            L.append("| %s | %s %s | %s | %s | %s |" % (
                f["name"], cell(f["agent"]), f["unit"],
                ("%s (%s)" % (cell(f["anchor"]), f["anchor_name"])) if f["anchor"] else "-",
                ("%.2fx" % f["ratio"]) if f.get("ratio") else "-", txt or f["note"]))
        if title == "Footprint":
            L.append("\n![footprint](footprint.svg)")
    S = R["scale"]
    if S:
        L.append("\n## Scale\n")
        L.append("Live processes (`sleep 600`, --max-running 2000): what one more running "
                 "process costs. Latency p50 with one connection; /health req/s at 50.\n")
        L.append("| live | agent RSS KiB | per process | idle CPU | /health req/s | list p50 ms "
                 "| GET one p50 ms | submit/s | SIGTERM to exit s |")
        L.append("|---|---|---|---|---|---|---|---|---|")
        for n in (10, 100, 1000):
            s = S.get("live_%d" % n)
            if s:
                L.append("| %d | %d | %.2f KiB | %.1f%% | %s | %s | %s | %.0f | %.3f |" % (
                    n, s["rss_kb"], (s["rss_kb"] - s["rss0_kb"]) / n, s["idle_cpu_pct"],
                    cell(s["health_rps"]), cell(s["list_p50"]), cell(s["get_p50"]),
                    s["submit_per_s"], s["shutdown_s"]))
        L.append("\nKept records (finished `echo record N`): list latency and memory per "
                 "record. The first list renders each finished record once and keeps it "
                 "(RSS after listing).\n")
        L.append("| records | list bytes | list p50 ms | per record us | list?output=false p50 ms "
                 "| GET one p50 ms | /health req/s | RSS KiB | per record | RSS listed KiB "
                 "| per record |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for n in (10, 100, 1000):
            s = S.get("records_%d" % n)
            if s:
                L.append("| %d | %d | %s | %.2f | %s | %s | %s | %d | %.2f KiB | %d | %.2f KiB |" % (
                    n, s["list_bytes"], cell(s["list_p50"]), s["list_p50"]["median"] * 1e3 / n,
                    cell(s["list_short_p50"]), cell(s["get_p50"]), cell(s["health_rps"]),
                    s["rss_kb"], (s["rss_kb"] - s["rss0_kb"]) / n, s["rss_listed_kb"],
                    (s["rss_listed_kb"] - s["rss0_kb"]) / n))
    if R.get("profile"):
        p = R["profile"]
        L.append("\n## Profile: authenticated list, 10 records, 50 connections\n")
        L.append("`perf record -g` on an unstripped `-g -Os` musl build during wrk; self time by "
                 "symbol, top 15. Kernel (TCP over loopback, scheduling) takes %.0f%% of the "
                 "agent's samples.\n" % p["kernel_pct"])
        L.append("```")
        L.extend(p["top"])
        L.append("```")
        L.append("\nInclusive (children counted) for the agent's own steps: columns are "
                 "with children, self, symbol.\n")
        L.append("```")
        L.extend(p.get("inclusive", []))
        L.append("```")
    if R.get("container"):
        L.append("\n## Container (bench/container.sh)\n")
        L.append(R["container"])
    if R["notes"]:
        L.append("\n## Notes from this run\n")
        L.extend("- " + n for n in R["notes"])
    open(os.path.join(OUT, "results.md"), "w").write("\n".join(L) + "\n")
    svg_ratios(os.path.join(OUT, "ratios.svg"))
    svg_footprint(os.path.join(OUT, "footprint.svg"))
    json.dump(R, open(os.path.join(OUT, "results.json"), "w"), indent=1, default=str)


def main():
    R["load_start"] = os.getloadavg()
    only = os.environ.get("BENCH_ONLY", "http,spawn,output,footprint,scale,profile,container")
    steps = [("http", bench_http), ("spawn", bench_spawn), ("output", bench_output),
             ("footprint", bench_footprint), ("scale", bench_scale), ("profile", bench_profile),
             ("container", bench_container)]
    try:
        for name, fn in steps:
            if name in only.split(","):
                fn()
    finally:
        for p in STARTED:
            if p.poll() is None:
                p.terminate()   # nginx's master takes its worker down on TERM, not on KILL
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(WORK, ignore_errors=True)
    R["elapsed"] = time.monotonic() - T0
    report()
    log("wrote %s/results.md, ratios.svg, footprint.svg (%.0f s)" % (OUT, R["elapsed"]))


if __name__ == "__main__":
    main()
