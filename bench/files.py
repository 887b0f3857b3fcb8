"""The files benchmark (bench/files.sh): one run, every figure beside its anchor.

- download: GET /files/download of a SIZE file (sendfile) vs one nginx worker with sendfile
  serving the same file; curl on CPU 0, the server on CPU 1; median MiB/s of RUNS.
- upload: curl -T (raw) and curl -F (multipart) to /files/upload vs bench/upload_anchor.c
  (a blocking loopback receiver writing the body to a file in 256 KiB pieces) on the same
  CPU; the same curl commands for both.
- RSS: the agent's VmRSS sampled every 10 ms while all of that runs, and while 20 uploads
  (32 MiB each, half multipart) run at once; bound 16 MiB.
- list: GET /files/list of a 10 000-entry directory, median wall time of 11 (bound 50 ms).
Files live on tmpfs (/dev/shm) so the disk is not what is measured."""
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BIN, ANCHOR = sys.argv[1], sys.argv[2]
SIZE = int(os.environ.get("SIZE_MIB", "512")) << 20
RUNS = int(os.environ.get("RUNS", "3"))
TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
base = "/dev/shm" if os.path.isdir("/dev/shm") else None
WORK = tempfile.mkdtemp(prefix="sandbox-agent-bench-files-", dir=base)
os.chmod(WORK, 0o755)
procs = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port)).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def curl(*args):
    out = subprocess.run(["taskset", "-c", "0", "curl", "-sS", "-o", "/dev/null", *args],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(out.stderr)
    return out.stdout


class RSS:
    """Samples a pid's VmRSS (KiB) every 10 ms in a thread; .max after stop()."""
    def __init__(self, pid):
        self.pid, self.max, self.stop_ev = pid, 0, threading.Event()
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        while not self.stop_ev.is_set():
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            self.max = max(self.max, int(line.split()[1]))
            except OSError:
                return
            time.sleep(0.01)

    def stop(self):
        self.stop_ev.set()
        self.t.join()
        return self.max


def mibs(speeds):
    return statistics.median(speeds) / (1 << 20)


def main():
    big = os.path.join(WORK, "big.bin")
    with open(big, "wb") as f:
        chunk = os.urandom(1 << 20)
        for _ in range(SIZE >> 20):
            f.write(chunk)
    os.chmod(big, 0o644)
    res = {"size_mib": SIZE >> 20, "runs": RUNS}

    agent = subprocess.Popen(["taskset", "-c", "1", BIN, "--no-auth", "--listen", "127.0.0.1:0",
                              "--workdir", WORK], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    procs.append(agent)
    port = int(agent.stdout.readline().decode().split(":")[-1])
    url = f"http://127.0.0.1:{port}"
    rss = RSS(agent.pid)

    # download: agent vs nginx
    nport = free_port()
    conf = os.path.join(WORK, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes 1; daemon off; pid {WORK}/nginx.pid; error_log {WORK}/error.log;
events {{ worker_connections 64; }}
http {{ access_log off; sendfile on; server {{ listen 127.0.0.1:{nport}; root {WORK}; }} }}
""")
    nginx = subprocess.Popen(["taskset", "-c", "1", "nginx", "-c", conf, "-p", WORK],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(nginx)
    wait_port(nport)
    a_dl, n_dl = [], []
    for _ in range(RUNS):
        a_dl.append(float(curl("-w", "%{speed_download}", f"{url}/files/download?path=big.bin")))
        n_dl.append(float(curl("-w", "%{speed_download}", f"http://127.0.0.1:{nport}/big.bin")))
    nginx.send_signal(signal.SIGQUIT)
    nginx.wait(10)
    res["download"] = {"agent_mibs": mibs(a_dl), "nginx_mibs": mibs(n_dl),
                       "ratio": mibs(a_dl) / mibs(n_dl)}
    log("download", res["download"])

    # uploads: agent vs the anchor
    aport = free_port()
    anchor = subprocess.Popen(["taskset", "-c", "1", ANCHOR, str(aport), os.path.join(WORK, "anchor.out")],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    procs.append(anchor)
    anchor.stdout.readline()
    for kind, args_agent, args_anchor in (
            ("raw", ["-T", big, f"{url}/files/upload?path=up-raw.bin"],
             ["-T", big, f"http://127.0.0.1:{aport}/up"]),
            ("multipart", ["-F", f"file=@{big}", "-F", "path=up-mp.bin", f"{url}/files/upload"],
             ["-F", f"file=@{big}", "-F", "path=up-mp.bin", f"http://127.0.0.1:{aport}/up"])):
        ag, an = [], []
        for _ in range(RUNS):
            ag.append(float(curl("-w", "%{speed_upload}", *args_agent)))
            an.append(float(curl("-w", "%{speed_upload}", *args_anchor)))
        res["upload_" + kind] = {"agent_mibs": mibs(ag), "anchor_mibs": mibs(an),
                                 "ratio": mibs(ag) / mibs(an)}
        log("upload", kind, res["upload_" + kind])
    anchor.kill()
    for n in ("up-raw.bin", "up-mp.bin", "anchor.out"):
        try:
            os.unlink(os.path.join(WORK, n))
        except OSError:
            pass
    res["rss_transfers_kib"] = rss.stop()

    # 20 uploads at once
    small = os.path.join(WORK, "small.bin")
    with open(small, "wb") as f:
        f.write(os.urandom(32 << 20))
    rss = RSS(agent.pid)
    cs = []
    for i in range(20):
        args = (["-T", small, f"{url}/files/upload?path=c{i}.bin"] if i % 2 else
                ["-F", f"file=@{small}", "-F", f"path=c{i}.bin", f"{url}/files/upload"])
        cs.append(subprocess.Popen(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", *args],
                                   stdout=subprocess.PIPE, text=True))
    codes = [c.communicate()[0] for c in cs]
    res["rss_20_uploads_kib"] = rss.stop()
    res["uploads_20_ok"] = codes.count("200")
    for i in range(20):
        os.unlink(os.path.join(WORK, f"c{i}.bin"))
    log("20 uploads", codes.count("200"), "ok, rss max", res["rss_20_uploads_kib"], "KiB")

    # a 10 000-entry listing
    many = os.path.join(WORK, "many")
    os.mkdir(many)
    for i in range(10000):
        open(os.path.join(many, f"file-{i:05d}.txt"), "w").close()
    times = []
    for _ in range(11):
        t = float(curl("-w", "%{time_total}", f"{url}/files/list?path={many}"))
        times.append(t * 1000)
    res["list_10000_ms"] = statistics.median(times)
    res["list_10000_ms_min"] = min(times)
    log("list 10000", res["list_10000_ms"], "ms")
    with open(f"/proc/{agent.pid}/status") as f:
        res["vmhwm_kib"] = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    agent.terminate()
    agent.wait(10)
    res["load"] = os.getloadavg()
    write_report(res)
    print(json.dumps(res))


def write_report(r):
    ok = lambda c: "met" if c else "**missed**"
    rows = [
        ("download %d MiB (sendfile)" % r["size_mib"], "%.0f MiB/s" % r["download"]["agent_mibs"],
         "nginx, 1 worker, sendfile: %.0f MiB/s" % r["download"]["nginx_mibs"],
         "%.2fx (>= 0.9x: %s)" % (r["download"]["ratio"], ok(r["download"]["ratio"] >= 0.9))),
    ]
    for k in ("raw", "multipart"):
        u = r["upload_" + k]
        rows.append(("upload %d MiB, %s" % (r["size_mib"], k), "%.0f MiB/s" % u["agent_mibs"],
                     "upload_anchor.c: %.0f MiB/s" % u["anchor_mibs"],
                     "%.2fx (>= 0.8x: %s)" % (u["ratio"], ok(u["ratio"] >= 0.8))))
    rows += [
        ("agent RSS during those transfers", "%.1f MiB" % (r["rss_transfers_kib"] / 1024), "",
         "< 16 MiB: %s" % ok(r["rss_transfers_kib"] < 16384)),
        ("agent RSS during 20 uploads at once (32 MiB each, %d/20 ok)" % r["uploads_20_ok"],
         "%.1f MiB" % (r["rss_20_uploads_kib"] / 1024), "",
         "< 16 MiB: %s" % ok(r["rss_20_uploads_kib"] < 16384)),
        ("list a 10 000-entry directory", "%.1f ms (min %.1f)" % (r["list_10000_ms"], r["list_10000_ms_min"]),
         "", "< 50 ms: %s" % ok(r["list_10000_ms"] < 50)),
        ("agent peak RSS over the whole run (VmHWM)", "%.1f MiB" % (r["vmhwm_kib"] / 1024), "", ""),
    ]
    with open(os.path.join(TOP, "bench/files.md"), "w") as f:
        f.write("# Files benchmark\n\nOne run of `bench/files.sh` (%d runs per figure, medians; "
                "files on tmpfs; server on CPU 1, curl on CPU 0; load average %.1f %.1f %.1f).\n\n"
                % (r["runs"], *r["load"]))
        f.write("| what | agent | anchor | ratio / bound |\n|---|---|---|---|\n")
        for row in rows:
            f.write("| " + " | ".join(row) + " |\n")


try:
    main()
finally:
    for p in procs:
        if p.poll() is None:
            p.kill()
    shutil.rmtree(WORK, ignore_errors=True)
