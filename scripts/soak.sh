#!/bin/sh
# make soak: SOAK_SECONDS (default 1800) of mixed load against the static binary, then
# bench/soak.md. Not part of make test.
#   - wrk (2 threads, 8 connections) rotating GET /health, the record list (without output)
#     and the list filtered by status;
#   - a steady loader: short commands (10/s), long ones later killed with TERM/INT/KILL,
#     timeouts (background and synchronous), synchronous runs, python code, 1 MB of binary
#     output every 5 s (so the output budget evicts), output reads, forgets;
#   - every 10 s: the agent's RSS, descriptors, records (running/queued), zombies, CPU.
# Every response the loader gets is classed as intended (200; 408 for a synchronous
# timeout; 404 for a kill or read that raced the end or eviction; 409 for a forget that
# raced the start) or not; the report lists both. Usage: scripts/soak.sh BIN
set -eu
bin=$(realpath "$1")
cd "$(dirname "$0")/.."
secs=${SOAK_SECONDS:-1800}
out=${SOAK_REPORT:-bench/soak.md}
d=build/soak
rm -rf "$d"
mkdir -p "$d/work"
secret=soak-secret-0123456789abcdef0123456789
export SANDBOX_AGENT_JWT_SECRET=$secret

# request lines are counted by status, everything else kept: the log of a 30-minute wrk
# run would otherwise take gigabytes (the agent drops lines rather than block on a slow
# reader of its stderr)
mkfifo "$d/log.fifo"
awk -v counts="$d/request-status.txt" '
    /event=request / { for (i = 1; i <= NF; i++) if ($i ~ /^status=/) n[substr($i, 8)]++; next }
    { print; fflush() }
    END { for (s in n) print s, n[s] > counts }' <"$d/log.fifo" >"$d/agent.log" &
awk_pid=$!

"$bin" --listen 127.0.0.1:0 --workdir "$d/work" --grace 2 >"$d/stdout" 2>"$d/log.fifo" &
pid=$!
for _ in $(seq 100); do
    grep -q '^listening on ' "$d/stdout" 2>/dev/null && break
    sleep 0.1
done
addr=$(sed -n 's/^listening on //p' "$d/stdout")
[ -n "$addr" ] || { echo "soak: the agent did not start" >&2; kill "$pid"; exit 1; }
# interrupted or failed: leave nothing running (only what this script started, by pid)
cleanup() {
    for p in ${wrk_pid:-} ${load_pid:-} "$pid"; do kill "$p" 2>/dev/null || true; done
}
trap 'cleanup' EXIT
trap 'exit 130' INT TERM HUP
token=$("$bin" token --ttl $((secs + 3600)))
echo "soak: agent pid $pid on $addr for $secs s ($(date -u +%FT%TZ))"
uptime

cat >"$d/paths.lua" <<'EOF'
local paths = { "/health", "/execute/processes?output=false",
                "/execute/processes?status=running&output=false" }
local i = 0
request = function()
    i = i % #paths + 1
    return wrk.format("GET", paths[i])
end
EOF

cat >"$d/load.py" <<'EOF'
"""The soak's steady stream of process work; prints a JSON summary of every response."""
import http.client, json, random, sys, time
host, port = sys.argv[1].rsplit(":", 1)
token, secs = sys.argv[2], float(sys.argv[3])
rnd = random.Random(7)
stats, unexpected = {}, []
INTENDED = {"kill": {200, 404}, "output": {200, 404}, "forget": {200, 404, 409},
            "sync-timeout": {408}}

def call(kind, method, path, body=None, timeout=60):
    h = {"Authorization": "Bearer " + token, "Host": "soak"}
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        h["Content-Type"] = "application/json"
    try:
        c = http.client.HTTPConnection(host, int(port), timeout=timeout)
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        raw = r.read()
        c.close()
        status = r.status
    except Exception as e:   # a connection error is never intended
        status, raw = type(e).__name__, b""
    key = f"{kind} {status}"
    stats[key] = stats.get(key, 0) + 1
    if status not in INTENDED.get(kind, {200}):
        unexpected.append(f"{kind} {method} {path}: {status} {raw[:200]!r}")
    try:
        return json.loads(raw) if status == 200 else None
    except ValueError:
        return None

longs, done_ids = [], []
start = time.monotonic()
tick = 0
while time.monotonic() - start < secs:
    t0 = time.monotonic()
    n = tick
    r = call("short", "POST", "/commands/background", {"command": f"echo {n}; exit {n % 3}"})
    if r:
        done_ids.append(r["process_id"])
    if tick % 10 == 0:   # every second
        r = call("long", "POST", "/commands/background", {"command": "sleep 15", "name": "long"})
        if r:
            longs.append((time.monotonic(), r["process_id"]))
        old = [p for p in longs if time.monotonic() - p[0] > 3]
        if old:
            p = rnd.choice(old)
            longs.remove(p)
            call("kill", "DELETE", "/execute/kill",
                 {"process_id": p[1], "signal": rnd.choice(["SIGTERM", "INT", 9])})
        r = call("sync", "POST", "/commands/run", {"command": "echo sync; echo err >&2"})
        r = call("output", "GET", f"/execute/processes/{rnd.choice(done_ids)}/output?offset=1") \
            if done_ids else None
    if tick % 20 == 5:   # every 2 s
        call("timeout", "POST", "/commands/background", {"command": "sleep 60", "timeout": 1})
    if tick % 30 == 7:   # every 3 s
        call("code", "POST", "/execute/background",
             {"code": "import sys\nfor i in range(1000): print('x' * 100)\n", "language": "python"})
    if tick % 50 == 9:   # every 5 s
        call("binary", "POST", "/commands/background", {"command": "head -c 1000000 /dev/urandom"})
        if done_ids:
            call("forget", "DELETE", f"/execute/processes/{done_ids.pop(0)}")
    if tick % 100 == 11:   # every 10 s
        call("sync-timeout", "POST", "/commands/run", {"command": "sleep 30", "timeout": 1})
    del done_ids[:-200]
    tick += 1
    time.sleep(max(0, 0.1 - (time.monotonic() - t0)))
print(json.dumps({"stats": stats, "unexpected": unexpected[:50],
                  "unexpected_count": len(unexpected), "ticks": tick}))
EOF

sample() {   # t rss_kb fds records running queued zombies cpu_s
    rss=$(awk '$1 == "VmRSS:" { print $2 }' "/proc/$pid/status")
    fds=$(ls "/proc/$pid/fd" | wc -l)
    snap=$(curl -s -m 10 -H "Authorization: Bearer $token" "http://$addr/metrics/snapshot" || true)
    recs=$(printf '%s' "$snap" | jq -r '.process.count // "?"')
    run=$(printf '%s' "$snap" | jq -r '.process.running // "?"')
    que=$(printf '%s' "$snap" | jq -r '.process.queued // "?"')
    # cat, not awk on the files: awk stops at a file that vanished meanwhile
    zomb=$(cat /proc/[0-9]*/stat 2>/dev/null |
        awk -v p="$pid" '{ sub(/^.*\) /, ""); if ($1 == "Z" && $2 == p) n++ } END { print n + 0 }')
    cpu=$(awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.1f", ($12 + $13) / hz }' \
        "/proc/$pid/stat")
    echo "$1 $rss $fds $recs $run $que $zomb $cpu" >>"$d/samples.txt"
}

wrk -t2 -c8 -d"${secs}s" --timeout 10s -s "$d/paths.lua" -H "Authorization: Bearer $token" \
    "http://$addr" >"$d/wrk.txt" 2>&1 &
wrk_pid=$!
/usr/bin/python3 "$d/load.py" "$addr" "$token" "$secs" >"$d/load.json" 2>"$d/load.err" &
load_pid=$!

t0=$(date +%s)
sample 0
while :; do
    sleep 10
    t=$(($(date +%s) - t0))
    sample "$t"
    [ "$t" -lt "$secs" ] || break
done
wait "$wrk_pid" || true
wait "$load_pid" || true
# the load has stopped: long and timed-out commands end, then the last sample
sleep 20
sample "$(($(date +%s) - t0))"

trap - EXIT INT TERM HUP
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
wait "$awk_pid" || true
echo "soak: agent exited $rc"

cat >"$d/report.py" <<'EOF'
"""Writes the soak report from build/soak (rerunnable: report.py DIR OUT SECS RC)."""
import json, re, sys, time
d, out, secs, rc = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [l.split() for l in open(f"{d}/samples.txt") if l.strip()]
cols = ["t", "rss_kb", "fds", "records", "running", "queued", "zombies", "cpu_s"]
S = [dict(zip(cols, r)) for r in rows]
def series(k):
    return [float(s[k]) for s in S if s[k] not in ("?", "")]
wrk = open(f"{d}/wrk.txt").read()
load = json.loads(open(f"{d}/load.json").read() or "{}")
status = dict(l.split() for l in open(f"{d}/request-status.txt")) if \
    __import__("os").path.exists(f"{d}/request-status.txt") else {}
warm = [s for s in S if float(s["t"]) >= 300] or S
def line(k, label, scale=1, unit=""):
    v, w = series(k), [float(s[k]) for s in warm if s[k] not in ("?", "")]
    if not v:
        return f"| {label} | ? | ? | ? | ? |"
    f = lambda x: f"{x / scale:.1f}{unit}" if scale != 1 else f"{x:.0f}{unit}"
    return f"| {label} | {f(v[0])} | {f(min(w))} .. {f(max(w))} | {f(max(v))} | {f(v[-1])} |"
m = re.search(r"(\d+) requests in ([\d.]+\w+)", wrk)
rps = re.search(r"Requests/sec:\s+([\d.]+)", wrk)
non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
sockerr = re.search(r"Socket errors: (.*)", wrk)
lat = re.search(r"Latency\s+(\S+)\s+(\S+)\s+(\S+)", wrk)
L = []
L.append("# Soak: 30 minutes of mixed load" if secs == 1800 else f"# Soak: {secs} s of mixed load")
L.append("")
started = time.gmtime(__import__("os").path.getmtime(f"{d}/stdout"))
L.append(f"`make soak` (started {time.strftime('%Y-%m-%d %H:%M UTC', started)}), static binary, "
         f"default limits (`--max-records 1000`, 1 MiB per stream, 256 MiB output budget), "
         f"`--grace 2`, on the shared 2-core build machine. Load: wrk -t2 -c8 rotating "
         f"`/health`, the record list without output and the list filtered by status; beside it "
         f"a loader with 10 short commands/s, a `sleep 15` every second (a random earlier one "
         f"killed with TERM, INT or KILL), a background timeout every 2 s, a synchronous run "
         f"every second and a synchronous timeout (408) every 10 s, python code every 3 s, "
         f"1 MB of binary output every 5 s (the output budget evicts), output reads and forgets. "
         f"Sampled every 10 s; the last sample is 20 s after the load stopped.")
L.append("")
L.append("| figure | start | after warm-up (5 min on): min .. max | max | end |")
L.append("|---|---|---|---|---|")
L.append(line("rss_kb", "agent RSS (MiB)", 1024))
L.append(line("fds", "open descriptors"))
L.append(line("records", "records kept"))
L.append(line("running", "running"))
L.append(line("queued", "queued"))
L.append(line("zombies", "zombie children"))
L.append("")
z = [i for i, s in enumerate(S) if s["zombies"] not in ("0", "?")]
longest, run = 0, 0
for i in range(len(S)):
    run = run + 1 if i in z else 0
    longest = max(longest, run)
L.append(f"Zombie children: {len(z)} of {len(S)} samples saw one or more, the longest stretch "
         f"{longest} sample(s); {S[-1]['zombies']} at the end. A child is a zombie from its exit "
         f"until the agent's `waitpid` in the next loop round, so a sample may catch one; a "
         f"zombie that stayed would show in consecutive samples." if z else
         f"Zombie children: none in any of the {len(S)} samples.")
L.append("")
cpu = series("cpu_s")
L.append(f"Agent CPU time: {cpu[-1]:.0f} s over {S[-1]['t']} s of wall time."
         if cpu else "")
L.append("")
L.append("## Responses")
L.append("")
if m:
    L.append(f"- wrk: {m.group(1)} requests in {m.group(2)}, {rps.group(1) if rps else '?'} req/s, "
             f"latency avg {lat.group(1)} / stdev {lat.group(2)} / max {lat.group(3)}; "
             f"non-2xx: {non2xx.group(1) if non2xx else 0}; socket errors: "
             f"{sockerr.group(1) if sockerr else 'none'}" if lat else f"- wrk: {m.group(0)}")
stats = load.get("stats", {})
L.append(f"- loader: {sum(stats.values())} requests over {load.get('ticks', '?')} ticks; by kind and "
         f"status: " + ", ".join(f"{k}: {v}" for k, v in sorted(stats.items())))
L.append(f"- loader responses outside the intended set: {load.get('unexpected_count', '?')}")
for u in load.get("unexpected", [])[:10]:
    L.append(f"  - `{u}`")
L.append(f"- the agent's request log by status (a lower bound: the agent drops log lines "
         f"rather than wait for a slow reader): " +
         ", ".join(f"{k}: {v}" for k, v in sorted(status.items())))
L.append(f"- agent exit status after SIGTERM: {rc}")
L.append("")
L.append("## Samples")
L.append("")
L.append("| t (s) | RSS (MiB) | fds | records | running | queued | zombies | CPU (s) |")
L.append("|---|---|---|---|---|---|---|---|")
step = max(1, len(S) // 40)
for i, s in enumerate(S):
    if i % step == 0 or i == len(S) - 1:
        rss = f"{int(s['rss_kb']) / 1024:.1f}" if s["rss_kb"].isdigit() else "?"
        L.append(f"| {s['t']} | {rss} | {s['fds']} | {s['records']} | {s['running']} | "
                 f"{s['queued']} | {s['zombies']} | {s['cpu_s']} |")
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L[:18]))
EOF
/usr/bin/python3 "$d/report.py" "$d" "$out" "$secs" "$rc"
echo "soak: report in $out"
