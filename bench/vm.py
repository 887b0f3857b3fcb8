"""make bench, VM figures (issue 17): QEMU start -> first /health answer through the host
forward, with the agent as the VM's /init (it loads the NIC modules and configures eth0
itself) against the same kernel and initrd booted with a busybox shell init that does those
steps (insmod x8, ip link/addr/route) and then execs the agent; and the agent's resident
memory in the guest right after boot; and /commands/run `true` with a cgroup per record
against process groups only (--no-cgroups), two VMs side by side. Runs alternate between the two so machine load hits
both alike. Medians (min / max) of RUNS runs; writes $BENCH_OUT/vm.md (default bench/vm.md).
Never part of make test. Usage: python3 bench/vm.py [AGENT_BIN]"""
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "test/integration"))
os.environ.setdefault("AGENT_BIN", os.path.abspath(sys.argv[1] if len(sys.argv) > 1
                                                   else os.path.join(ROOT, "build/sandbox-agent")))
import vmtools  # noqa: E402  (after AGENT_BIN: conftest reads it)
from vmtools import VM  # noqa: E402

RUNS = int(os.environ.get("RUNS", "5"))
OUT = os.path.join(os.environ.get("BENCH_OUT", os.path.join(ROOT, "bench")), "vm.md")
# the shell init does the modules and eth0 itself: the agent then gets neither flag (later
# words of the kernel command line replace earlier ones of the same name, empty = unset)
SHELL_INIT = dict(init="/sbin/init-sh", append="SANDBOX_AGENT_MODULES= SANDBOX_AGENT_NET=")


def stats(xs, unit="ms", scale=1000.0):
    xs = sorted(x * scale for x in xs)
    return f"{statistics.median(xs):.0f} {unit} ({xs[0]:.0f} / {xs[-1]:.0f})"


def cpu_s(pid):
    """User + system CPU seconds of a process (all its threads) from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def boot(tmp, **kw):
    """(wall seconds to /health, QEMU CPU seconds by then, PID 1 VmRSS kB, VmHWM kB)."""
    v = VM(tmp, **kw)
    try:
        t = v.wait_health(timeout=300, attempt=0.25)
        cpu = cpu_s(v.proc.pid)
        rss = v.run("grep -E 'VmRSS|VmHWM' /proc/1/status")["stdout"].split()
        return t, cpu, int(rss[rss.index("VmRSS:") + 1]), int(rss[rss.index("VmHWM:") + 1])
    finally:
        v.stop()


def spawn_costs(tmp, n):
    """Sequential /commands/run of `true` (wall, from the client) in one VM with a cgroup per
    record and in one with --no-cgroups; returns ({kind: [seconds...]}), runs alternating."""
    vms = {"cgroup": VM(os.path.join(tmp, "cg")),
           "group": VM(os.path.join(tmp, "pg"), append="SANDBOX_AGENT_NO_CGROUPS=1")}
    try:
        for v in vms.values():
            v.wait_health(timeout=300)
        for kind, v in vms.items():
            want = "cgroup2" if kind == "cgroup" else "process_groups"
            assert v.get("/info").json()["process_control"] == want
            v.run("true")   # warm: the busybox pages, the first cgroup
        out = {k + pace: [] for k in vms for pace in ("", "_b2b", "_cpu")}
        for i in range(n):
            for kind, v in vms.items():
                c0 = cpu_s(v.proc.pid)
                for pace in ("", "_b2b", "_b2b"):
                    if not pace:   # an isolated start: the cgroup upkeep of the last is done
                        time.sleep(0.2)
                    t0 = time.monotonic()
                    r = v.run("true")
                    out[kind + pace].append(time.monotonic() - t0)
                    assert r["exit_code"] == 0, r
                time.sleep(0.2)   # the upkeep after the last one counts too
                # the guest's whole cost of three starts, as QEMU's CPU time: machine load
                # stretches wall times, hardly this (an idle guest's ticks are in both)
                out[kind + "_cpu"].append((cpu_s(v.proc.pid) - c0) / 3)
        return out
    finally:
        for v in vms.values():
            v.stop()


def main():
    why = vmtools.missing_tools()
    if why:
        print(f"bench/vm.py: skipped: {why}", file=sys.stderr)
        return 0
    vmtools.build(os.environ["AGENT_BIN"])
    with open(os.path.join(vmtools.VM_DIR, "kernel/version")) as f:
        kernel = f.read().strip()
    agent, shell, agent_cpu, shell_cpu, rss, hwm = [], [], [], [], [], []
    load0 = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="sa-bench-vm-") as tmp:
        for i in range(RUNS):
            for kind in ("agent", "shell") if i % 2 == 0 else ("shell", "agent"):
                d = os.path.join(tmp, f"{kind}-{i}")
                os.mkdir(d)
                t, c, r, h = boot(d, **(SHELL_INIT if kind == "shell" else {}))
                (agent if kind == "agent" else shell).append(t)
                (agent_cpu if kind == "agent" else shell_cpu).append(c)
                if kind == "agent":
                    rss.append(r)
                    hwm.append(h)
                print(f"vm: run {i + 1} {kind}: {t * 1000:.0f} ms to /health, QEMU CPU "
                      f"{c * 1000:.0f} ms, PID 1 RSS {r} kB", file=sys.stderr)
        for kind in ("cg", "pg"):
            os.mkdir(os.path.join(tmp, kind))
        spawn = spawn_costs(tmp, int(os.environ.get("SPAWNS", "30")))
    load1 = os.getloadavg()[0]
    accel = "KVM" if os.access("/dev/kvm", os.W_OK) else "TCG (no KVM)"
    ratio = statistics.median(agent) / statistics.median(shell)
    ratio_cpu = statistics.median(agent_cpu) / statistics.median(shell_cpu)
    lines = [
        f"## VM: the agent as /init (QEMU {qemu_version()}, {accel}, -cpu max)",
        "",
        f"Kernel {kernel} (Debian cloud), initrd uncompressed (agent + static busybox + 8 NIC "
        f"modules), 256 MiB, user networking with a host forward. Medians of {RUNS} runs "
        f"(min / max), the two kinds alternating; {os.cpu_count()} cores, load "
        f"{load0:.1f} -> {load1:.1f}.",
        "",
        "| measure | figure |",
        "|---|---|",
        f"| QEMU start to first `/health`, agent as `/init` (`--modules`, `--net` itself) | {stats(agent)} |",
        f"| same, busybox `/init` script (insmod x8, `ip`), then exec the agent | {stats(shell)} |",
        f"| ratio agent / shell init (target <= 1) | {ratio:.2f} |",
        f"| QEMU CPU time (user + system) by the first `/health`, agent as `/init` | {stats(agent_cpu)} |",
        f"| same, busybox `/init` script | {stats(shell_cpu)} |",
        f"| ratio of CPU time agent / shell init (less sensitive to machine load) | {ratio_cpu:.2f} |",
        f"| agent RSS (PID 1, `VmRSS`) after boot and one command (target < 1 MiB) | {stats(rss, 'kB', 1)} |",
        f"| agent peak RSS (`VmHWM`) | {stats(hwm, 'kB', 1)} |",
        f"| `/commands/run true`, an isolated start (0.2 s apart), a cgroup per record | {stats(spawn['cgroup'])} |",
        f"| same with `--no-cgroups` (process group only) | {stats(spawn['group'])} |",
        f"| ratio cgroup / process group (target < 1.20) | {statistics.median(spawn['cgroup']) / statistics.median(spawn['group']):.2f} |",
        f"| `/commands/run true` back to back (the removal and the next spare cgroup run between requests), cgroup | {stats(spawn['cgroup_b2b'])} |",
        f"| same, `--no-cgroups` | {stats(spawn['group_b2b'])} |",
        f"| ratio back to back | {statistics.median(spawn['cgroup_b2b']) / statistics.median(spawn['group_b2b']):.2f} |",
        f"| QEMU CPU time per `/commands/run true` (upkeep included), cgroup | {stats(spawn['cgroup_cpu'])} |",
        f"| same, `--no-cgroups` | {stats(spawn['group_cpu'])} |",
        f"| ratio of CPU time cgroup / process group (less sensitive to machine load) | {statistics.median(spawn['cgroup_cpu']) / statistics.median(spawn['group_cpu']):.2f} |",
    ]
    text = "\n".join(lines) + "\n"
    with open(OUT, "w") as f:
        f.write(text)
    print(text)
    return 0


def qemu_version():
    out = subprocess.run([vmtools.QEMU, "--version"], capture_output=True, text=True).stdout
    return out.split("version", 1)[1].split()[0] if "version" in out else "?"


if __name__ == "__main__":
    sys.exit(main())
