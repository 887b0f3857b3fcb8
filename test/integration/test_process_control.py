"""Process control (API.md) on this host: without a writable cgroup v2 (here: cgroup v1) the
agent falls back to process groups, says so in /info, and refuses limits with a clear 400
rather than ignoring them (the cgroup side runs in the VM, test_vm.py); resources on every
finished record; user on start requests."""
import os

import pytest

from conftest import wait_done


def cgroup2_here():
    with open("/proc/self/mounts") as f:
        return " /sys/fs/cgroup cgroup2 " in f.read()


fallback = pytest.mark.skipif(cgroup2_here(), reason="this machine has cgroup v2: the "
                              "fallback cannot be seen here (test_vm.py covers cgroups)")


@fallback
def test_info_says_process_groups(agent):
    assert agent.get("/info").json()["process_control"] == "process_groups"


@fallback
@pytest.mark.parametrize("limits", [{"memory_bytes": 64 << 20}, {"pids": 10},
                                    {"cpu_percent": 50}])
def test_limits_are_refused_without_cgroups(agent, limits):
    r = agent.post("/commands/run", {"command": "true", "limits": limits})
    assert r.status == 400, r
    body = r.json()
    assert body["code"] == "INVALID_REQUEST"
    assert "cgroup v2" in body["message"] and next(iter(limits)) in body["message"], body


@fallback
@pytest.mark.parametrize("limits,field", [
    ("64M", "limits"), ([1], "limits"), ({"memory_bytes": "64M"}, "limits.memory_bytes"),
    ({"memory_bytes": 1000}, "limits.memory_bytes"), ({"pids": 0}, "limits.pids"),
    ({"pids": 1.5}, "limits.pids"), ({"cpu_percent": -1}, "limits.cpu_percent")])
def test_malformed_limits_name_the_field(agent, limits, field):
    r = agent.post("/commands/background", {"command": "true", "limits": limits})
    assert r.status == 400, r
    # the decoder names a nested field by its own name ('memory_bytes' inside 'limits')
    assert r.json()["code"] == "INVALID_REQUEST", r.json()
    assert f"'{field.split('.')[-1]}'" in r.json()["message"], r.json()


@fallback
def test_no_limits_run_as_before(agent):
    for limits in (None, {}, {"memory_bytes": None}):
        r = agent.post("/commands/background", {"command": "echo ok", "limits": limits})
        assert r.status == 200, r
        rec = wait_done(agent, r.json()["process_id"])
        assert rec["status"] == "completed" and rec["stdout"] == "ok\n", rec
        assert "memory_peak_bytes" not in rec   # only where the record had a cgroup


def test_finished_records_carry_resources(agent):
    r = agent.post("/commands/background", {
        "command": "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"})
    rec = wait_done(agent, r.json()["process_id"])
    res = rec["resources"]
    assert set(res) == {"user_cpu_s", "system_cpu_s", "max_rss_kb"}, res
    assert res["user_cpu_s"] + res["system_cpu_s"] > 0, res
    assert res["max_rss_kb"] > 0, res
    r = agent.post("/commands/background", {"command": "sleep 30"})
    running = agent.get(f"/execute/processes/{r.json()['process_id']}").json()
    assert "resources" not in running   # only once reaped
    agent.post(f"/execute/kill/{running['process_id']}")


# ---- user (API.md, Process control): the agent runs as root here ----

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


@root_only
@pytest.mark.parametrize("who", ["nobody", 65534, "65534"])
def test_user_runs_the_command_as_that_user(agent, who):
    r = agent.post("/commands/run", {"command": "id -u; id -g; echo $HOME $USER $LOGNAME",
                                     "user": who, "working_dir": "/tmp"})
    assert r.status == 200, r
    out = r.json()["stdout"].split("\n")
    assert out[0] == "65534", r.json()
    assert out[2].split()[1:] == ["nobody", "nobody"], r.json()


@root_only
def test_user_for_code_and_args(agent):
    r = agent.post("/commands/run", {"command": "id", "args": ["-u"], "user": "nobody",
                                     "working_dir": "/tmp"})
    assert r.status == 200 and r.json()["stdout"] == "65534\n", r.json()
    r = agent.post("/execute", {"code": "id -u", "language": "bash", "user": "nobody",
                                "working_dir": "/tmp"})
    assert r.status == 200 and r.json()["stdout"] == "65534\n", r.json()


@root_only
def test_user_errors_are_400(agent, tmp_path):
    r = agent.post("/commands/run", {"command": "true", "user": "no-such-user-here"})
    assert r.status == 400 and "no such user" in r.json()["message"], r.json()
    for bad in ("", [1], -1, 1.5):
        r = agent.post("/commands/run", {"command": "true", "user": bad})
        msg = r.json()["message"]
        assert r.status == 400 and ("'user'" in msg or "no such user" in msg), (bad, r.json())
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    r = agent.post("/commands/run", {"command": "true", "user": "nobody",
                                     "working_dir": str(locked)})
    assert r.status == 400 and r.json()["code"] == "PERMISSION_DENIED", r.json()
    assert "cannot enter" in r.json()["message"]


@root_only
def test_default_user_flag(start_agent):
    a = start_agent("--default-user", "nobody")
    r = a.post("/commands/run", {"command": "id -u", "working_dir": "/tmp"})
    assert r.status == 200 and r.json()["stdout"] == "65534\n", r.json()
    r = a.post("/commands/run", {"command": "id -u", "user": "root"})
    assert r.status == 200 and r.json()["stdout"] == "0\n", r.json()
