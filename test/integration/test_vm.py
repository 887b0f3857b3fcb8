"""The agent as a real VM's /init (API.md, Virtual machines): Debian's cloud kernel under QEMU
(TCG here), nothing in front of the agent, driven from the host through a forward on
127.0.0.1 as a user would with curl. One VM is shared by the working-path tests and powered
off by the last of them; a second boot carries the faults (a missing module, a wrong
interface name) and stops by Ctrl-Alt-Del. Skipped only when QEMU cannot be installed."""
import os
import time

import pytest

from conftest import BIN, wait_done
import vmtools
from vmtools import VM, NIC_MODULES

WHY_NOT = vmtools.missing_tools()
pytestmark = [
    pytest.mark.skipif(WHY_NOT is not None, reason=str(WHY_NOT)),
    # the VM's /init must be the static binary; the ASan pass (a glibc build) skips
    pytest.mark.once,
]


@pytest.fixture(scope="module")
def image():
    if not vmtools.is_static(BIN):
        pytest.skip("a VM's /init must be the static build")
    vmtools.build(BIN)
    with open(os.path.join(vmtools.VM_DIR, "kernel/version")) as f:
        return f.read().strip()


@pytest.fixture(scope="module")
def vm(image, tmp_path_factory):
    v = VM(tmp_path_factory.mktemp("vm"))
    v.boot_s = v.wait_health()
    yield v
    v.stop()


def steps(log):
    """{step: 'result ...'} from the agent's event=init lines on the serial console."""
    out = {}
    for line in log.splitlines():
        if "event=init step=" in line:
            step = line.split('step="', 1)[1].split('"', 1)[0]
            out[step] = line.split('" result=', 1)[1]
    return out


# ---- one VM, the working path ----

def test_boot_serves_health_from_the_host(vm):
    r = vm.get("/health", token=False)
    assert r.status == 200 and r.json()["status"] == "ok", r
    info = vm.get("/info")
    assert info.status == 200, info
    assert info.json()["pid"] == 1, info.json()
    assert vm.get("/info", token=False).status == 401   # the secret came in the initrd


def test_every_init_step_is_logged_done(vm, image):
    s = steps(vm.log())
    for step in ("mount /proc", "mount /sys", "mount /dev", "mount /dev/pts", "mount /dev/shm",
                 "mount /tmp", "mount /run", "mount /sys/fs/cgroup", "lo up", "PATH",
                 "ctrl-alt-del", "modules list", "net eth0: up",
                 "net eth0: address 10.0.2.15/24", "net eth0: default route via 10.0.2.2", "dns"):
        assert s.get(step, "").startswith("done"), (step, s)
    for m in NIC_MODULES:
        assert s.get(f"module {m}.ko", "").startswith("done"), (m, s)
    # modules load synchronously and probe the NIC: the interface is there at once
    assert s.get("net eth0: wait", "").startswith(("present", "done")), s


def test_a_command_runs_in_the_guest(vm, image):
    r = vm.run("uname -r; echo $PATH; cat /etc/resolv.conf; ip -4 addr show eth0; ip route")
    assert r["exit_code"] == 0, r
    out = r["stdout"]
    assert out.startswith(image + "\n"), out   # Debian's kernel, not the host's
    assert "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" in out
    assert "nameserver 10.0.2.3" in out
    assert "inet 10.0.2.15/24" in out
    assert "default via 10.0.2.2 dev eth0" in out


def test_mounts_for_ptys_shm_and_cgroup2(vm):
    r = vm.run("cat /proc/mounts")
    mounts = {l.split()[1]: (l.split()[2], l.split()[3]) for l in r["stdout"].splitlines()}
    assert mounts["/dev/pts"][0] == "devpts" and "ptmxmode=666" in mounts["/dev/pts"][1], mounts
    assert mounts["/dev/shm"][0] == "tmpfs", mounts
    assert mounts["/sys/fs/cgroup"][0] == "cgroup2", mounts
    for m in ("/proc", "/sys", "/dev", "/tmp", "/run"):
        assert m in mounts, (m, mounts)
    r = vm.run("cat /sys/fs/cgroup/cgroup.controllers")
    assert {"cpu", "memory", "pids"} <= set(r["stdout"].split()), r
    r = vm.run("echo shm > /dev/shm/x && cat /dev/shm/x && ls -l /dev/pts/ptmx")
    assert r["exit_code"] == 0 and r["stdout"].startswith("shm\n"), r
    assert "crw-rw-rw-" in r["stdout"], r   # ptmxmode: anyone may open a PTY


def test_a_pty(vm):
    """A command on a pseudo-terminal (pty: true, API.md stdin/terminals). Until that
    feature is merged the agent ignores the field and the command has no terminal: the
    devpts mount is then checked by the test above only, and this one skips."""
    r = vm.run("tty; stty size", pty=True, cols=100, rows=30)
    if r["exit_code"] != 0 and "not a tty" in r["stdout"] + r["stderr"]:
        pytest.skip("the agent has no pty: true yet (stdin/terminal feature pending)")
    assert r["exit_code"] == 0, r
    assert "/dev/pts/" in r["stdout"], r
    assert "30 100" in r["stdout"], r


def test_background_command_and_its_kill(vm):
    r = vm.post("/commands/background", {"command": "sleep 300 & sleep 301; echo never"})
    assert r.status == 200, r
    pid = r.json()["process_id"]
    deadline = time.monotonic() + 60
    while vm.get(f"/execute/processes/{pid}").json()["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    k = vm.post(f"/execute/kill/{pid}")
    assert k.status == 200, k
    rec = wait_done(vm, pid, timeout=60)
    assert rec["status"] == "failed", rec
    assert "never" not in rec.get("stdout", ""), rec
    # the group went with it: no sleeper is left in the guest
    left = vm.run("ps -o pid,args | grep '[s]leep 30' || true")
    assert left["stdout"].strip() == "", left


def test_the_agent_is_small_in_the_guest(vm):
    """Resident memory of PID 1 right after boot (the bench reports the figure)."""
    r = vm.run("grep VmRSS /proc/1/status")
    kb = int(r["stdout"].split()[1])
    assert 0 < kb < 4096, r


# ---- process control (API.md): a cgroup per record, on this VM's cgroup2 ----

def gone(vm, pattern, timeout=60):
    """Waits until no process in the guest matches pattern (a grep -E on ps output)."""
    deadline = time.monotonic() + timeout
    while True:
        r = vm.run(f"ps -o pid,args | grep -E '{pattern}' | grep -v grep || true")
        if not r["stdout"].strip():
            return True
        assert time.monotonic() < deadline, r["stdout"]
        time.sleep(0.2)


def started(vm, body):
    r = vm.post("/commands/background", body)
    assert r.status == 200, r
    pid = r.json()["process_id"]
    deadline = time.monotonic() + 60
    while vm.get(f"/execute/processes/{pid}").json()["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    return pid


def cgroup_dir(vm, pid):
    return "/sys/fs/cgroup" + vm.get(f"/execute/processes/{pid}").json()["cgroup"]


def test_process_control_is_cgroup2_in_the_vm(vm):
    assert vm.get("/info").json()["process_control"] == "cgroup2"
    rec = vm.run("cat /proc/self/cgroup")
    full = vm.get(f"/execute/processes/{rec['process_id']}").json()
    assert full["cgroup"].startswith("/sandbox-agent/c"), full
    assert rec["stdout"] == f"0::{full['cgroup']}\n", (rec, full)
    assert full["memory_peak_bytes"] > 0, full


def test_the_agent_never_leaves_its_cgroup_to_spawn(vm):
    """clone3 with CLONE_INTO_CGROUP: the child is born in its record's cgroup, so the agent
    (PID 1 here) never steps into one around a spawn (the fallback for kernels before 5.7
    does). A record samples /proc/1/cgroup with shell builtins (no fork) while others start."""
    own = vm.run("cat /proc/1/cgroup")["stdout"].strip()
    sampler = started(vm, {"command": "n=0; while [ ! -e /tmp/hspawn-stop ]; do "
                                      "read l < /proc/1/cgroup; [ \"$l\" = '%s' ] || echo \"left $l\"; "
                                      "n=$((n+1)); done; echo samples $n" % own})
    for i in range(30):
        rec = vm.run("cat /proc/self/cgroup", limits={"pids": 1} if i % 2 else {})
        full = vm.get(f"/execute/processes/{rec['process_id']}").json()
        assert rec["stdout"] == f"0::{full['cgroup']}\n", (rec, full)
    assert vm.run("touch /tmp/hspawn-stop")["exit_code"] == 0
    rec = wait_done(vm, sampler, timeout=60)
    out = rec["stdout"]
    assert "left" not in out and out.startswith("samples ") and int(out.split()[1]) > 0, rec


def test_kill_reaches_a_setsid_child(vm):
    """A child in its own session escapes a process-group kill; the record's cgroup does not."""
    pid = started(vm, {"command": "setsid sleep 4321 & sleep 4322"})
    deadline = time.monotonic() + 30
    while "sleep 4321" not in vm.run("ps -o args")["stdout"]:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert vm.post(f"/execute/kill/{pid}").status == 200
    rec = wait_done(vm, pid, timeout=60)
    assert rec["status"] == "failed" and rec["reason"] == "killed", rec
    gone(vm, "sleep 432[12]")


def test_memory_limit_ends_with_reason_oom(vm):
    pid = started(vm, {"command": "dd if=/dev/zero of=/dev/null bs=209715200 count=1",
                       "limits": {"memory_bytes": 64 << 20}})
    rec = wait_done(vm, pid, timeout=90)
    assert rec["status"] == "failed" and rec["reason"] == "oom", rec
    assert rec["exit_code"] == 137, rec
    assert 0 < rec["memory_peak_bytes"] <= 64 << 20, rec


def test_pids_limit_stops_a_fork_bomb(vm):
    pid = started(vm, {"command": "b() { b | b & }; b; sleep 300", "limits": {"pids": 20}})
    cg = cgroup_dir(vm, pid)
    deadline = time.monotonic() + 60
    while True:   # the bomb hits the limit: forks fail, counted in pids.events
        r = vm.run(f"cat {cg}/pids.max {cg}/pids.current {cg}/pids.events")
        vals = r["stdout"].split()
        if r["exit_code"] == 0 and int(vals[vals.index("max", 2) + 1]) > 0:
            break
        assert time.monotonic() < deadline, r
        time.sleep(0.2)
    assert vals[0] == "20" and int(vals[1]) <= 20, vals
    assert vm.get("/health", token=False).status == 200   # the agent is fine
    assert vm.run("echo still")["stdout"] == "still\n"
    assert vm.post(f"/execute/kill/{pid}").status == 200
    rec = wait_done(vm, pid, timeout=60)
    assert rec["status"] == "failed", rec
    assert vm.run(f"test -e {cg} && cat {cg}/pids.current || echo removed")["stdout"] in \
        ("removed\n", "0\n")


def test_a_pids_limit_of_one_still_starts(vm):
    """The agent is in the cgroup while it spawns: that must not use up the limit."""
    rec = vm.run("echo one", limits={"pids": 1})
    assert rec["exit_code"] == 0 and rec["stdout"] == "one\n", rec
    rec = vm.run("/bin/sleep 0 & wait", limits={"pids": 1})   # a fork: refused by pids.max
    assert rec["exit_code"] != 0, rec


def test_finished_records_cgroups_are_removed(vm):
    """Removal waits for idle loop rounds, never forever: what is left is the spares made
    ahead of time (LIMIT_CGROUP_SPARES, 2) and the cgroup of the command looking."""
    for _ in range(5):
        assert vm.run("true")["exit_code"] == 0
    deadline = time.monotonic() + 60
    while True:
        left = vm.run("ls /sys/fs/cgroup/sandbox-agent | grep -c '^c[0-9]'")["stdout"]
        if int(left) <= 3:
            break
        assert time.monotonic() < deadline, left
        time.sleep(0.2)


def test_a_cgroup_outlives_its_record_while_a_daemon_runs(vm):
    """A record that exits leaving a setsid daemon behind: its cgroup stays while the
    daemon runs (removal is retried), then goes."""
    r = vm.run("setsid sleep 5555 </dev/null >/dev/null 2>&1 & echo started")
    assert r["exit_code"] == 0, r
    cg = "/sys/fs/cgroup" + vm.get(f"/execute/processes/{r['process_id']}").json()["cgroup"]
    assert vm.run(f"cat {cg}/cgroup.procs")["stdout"].strip() != "", "daemon not in the cgroup"
    vm.run("for p in $(pidof sleep); do grep -q 5555 /proc/$p/cmdline && kill $p; done")
    deadline = time.monotonic() + 60
    while vm.run(f"test -d {cg} && echo there || echo gone")["stdout"] != "gone\n":
        assert time.monotonic() < deadline, f"{cg} never removed"
        time.sleep(0.2)


def test_user_nobody_runs_as_65534(vm):
    rec = vm.run("id -u; id -g; cat /proc/self/cgroup", user="nobody", working_dir="/tmp",
                 limits={"pids": 8})
    assert rec["exit_code"] == 0, rec
    uid, gid, cg = rec["stdout"].split("\n")[:3]
    assert (uid, gid) == ("65534", "65534"), rec
    assert cg.startswith("0::/sandbox-agent/c"), rec   # the shim runs in the record's cgroup


def test_cpu_percent_throttles(vm):
    pid = started(vm, {"command": "while :; do :; done", "limits": {"cpu_percent": 10},
                       "timeout": 60})
    cg = cgroup_dir(vm, pid)
    assert vm.run(f"cat {cg}/cpu.max")["stdout"] == "10000 100000\n"
    deadline = time.monotonic() + 60
    while True:
        stat = dict(l.split() for l in vm.run(f"cat {cg}/cpu.stat")["stdout"].splitlines())
        if int(stat.get("nr_throttled", 0)) > 0:
            break
        assert time.monotonic() < deadline, stat
        time.sleep(0.2)
    assert vm.post(f"/execute/kill/{pid}").status == 200
    wait_done(vm, pid, timeout=60)


def test_sigterm_to_pid1_powers_the_vm_off(vm):
    """Last on this VM: kill -TERM 1 from inside is the graceful stop; the agent then powers
    the machine off and QEMU exits 0 (no kernel panic: init never returns)."""
    r = vm.post("/commands/background", {"command": "kill -TERM 1"})
    assert r.status == 200, r
    assert vm.wait_exit(120) == 0, vm.log()[-4000:]
    log = vm.log()
    assert "event=signal signal=SIGTERM" in log
    # nothing else to stop in the guest: kernel threads are never counted or signalled
    assert "event=shutdown phase=term grace_s=5 others=0" in log, log[-3000:]
    assert "event=stopped" in log and "event=poweroff" in log, log[-3000:]
    assert "reboot: Power down" in log, log[-3000:]
    assert "Kernel panic" not in log


# ---- a second boot: what does not work is logged, the rest still serves ----

def test_faults_are_logged_and_the_agent_still_serves(image, tmp_path):
    """A modules list naming a file that is not there, and --net naming an interface that
    does not exist: both logged with the reason, every other step done, the agent starts
    (listening, its loop running: Ctrl-Alt-Del from QEMU's keyboard stops it gracefully,
    then the VM powers off)."""
    nic = "".join(f"{m}.ko\n" for m in NIC_MODULES)
    initrd = vmtools.initrd_with(tmp_path, {
        "lib/modules/faulty.modules": (("# one missing\nmissing.ko\n" + nic).encode(), 0o644)})
    v = VM(tmp_path, initrd=initrd, net="eth9=10.0.2.15/24,gw=10.0.2.2",
           append="SANDBOX_AGENT_MODULES=/lib/modules/faulty.modules")
    try:
        v.wait_serial("event=start ", timeout=180)
        s = steps(v.log())
        assert s["module missing.ko"] == 'failed reason="No such file or directory"', s
        for m in NIC_MODULES:   # the next ones still load
            assert s.get(f"module {m}.ko", "").startswith("done"), (m, s)
        assert s["net eth9: wait up to 10000 ms"] == 'failed reason="No such device"', s
        assert s["dns"].startswith("done"), s
        assert "listening on 0.0.0.0:7777" in v.log()
        v.monitor("sendkey ctrl-alt-delete")
        assert v.wait_exit(120) == 0, v.log()[-4000:]
        log = v.log()
        assert "event=signal signal=SIGINT" in log, log[-3000:]
        assert "event=poweroff" in log and "reboot: Power down" in log, log[-3000:]
    finally:
        v.stop()
