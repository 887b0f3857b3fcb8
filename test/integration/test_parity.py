"""SDK parity (issue 12): error bodies the SDKs can show, typed answers for every SDK call,
timeout and kill semantics, and the small things a new user tripped on. Everything through
the real binary over loopback, as curl would."""
import base64
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import time

import pytest

from conftest import BIN, SECRET, get, start, wait_done

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..")


def is_error(r, status, code):
    body = r.json()
    assert r.status == status, r
    assert body["code"] == code, body
    assert body["message"] == body["error"] and body["message"], body
    assert body["request_id"], body
    return body["message"]


def wait_for(fn, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


# ---- error bodies (item 2) ----

def test_every_error_carries_message(agent):
    m = is_error(agent.get("/no/such/thing"), 404, "NOT_FOUND")
    assert "not found" not in m.lower()   # the SDK would raise FileNotFoundError
    is_error(agent.request("DELETE", "/health"), 405, "METHOD_NOT_ALLOWED")
    is_error(agent.get("/info", token=False), 401, "UNAUTHORIZED")
    is_error(agent.post("/commands/run", {}), 400, "MISSING_PARAMETER")
    is_error(agent.post("/commands/run", {"command": 5}), 400, "INVALID_REQUEST")


def test_server_level_errors_carry_message(agent):
    # a bad chunk is answered by server.c itself, before any handler
    out = agent.raw(b"POST /commands/run HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                    b"\r\nzz\r\n", close_write=True)
    head, _, body = out.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), out
    j = json.loads(body)
    assert j["message"] == j["error"] and j["code"] == "INVALID_REQUEST", j


@pytest.mark.parametrize("raw,offset", [
    (b'{"command": "x",}', 16),
    (b'{"command" "x"}', 11),
    (b'{"command": "x"', 15),
    (b'{"command": "x"} junk', 17),
])
def test_bad_json_says_where(agent, raw, offset):
    r = agent.request("POST", "/commands/run", raw_body=raw,
                      headers={"Content-Type": "application/json"})
    m = is_error(r, 400, "INVALID_JSON")
    assert f"at byte {offset}" in m, m


def test_unknown_process_says_no_such_process(agent):
    for r in (agent.get("/execute/processes/proc_0000000000000000"),
              agent.post("/execute/kill/proc_0000000000000000"),
              agent.request("DELETE", "/execute/kill", body={"process_id": "proc_0000000000000000"})):
        m = is_error(r, 404, "PROCESS_NOT_FOUND")
        assert m == "no such process: proc_0000000000000000", m
    done = wait_done(agent, start(agent, {"command": "true"})["process_id"])
    m = is_error(agent.post(f"/execute/kill/{done['process_id']}"), 404, "PROCESS_NOT_FOUND")
    assert "not found" not in m and done["process_id"] in m, m


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def make_token(claims, secret=SECRET):
    head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + b64(sig)


def test_token_messages(agent):
    now = int(time.time())
    cases = [
        (make_token({"iat": now}), "UNAUTHORIZED", "exp"),
        (make_token({"exp": now + 600, "nbf": now + 3600}), "UNAUTHORIZED", "nbf"),
        (make_token({"exp": now - 3600}), "TOKEN_EXPIRED", "token expired"),
        (make_token({"exp": now + 600}, secret="not-the-secret"), "UNAUTHORIZED",
         "invalid bearer token"),
        ("garbage", "UNAUTHORIZED", "invalid bearer token"),
    ]
    for tok, code, words in cases:
        m = is_error(agent.get("/info", token=tok), 401, code)
        assert words in m, (tok, m)
        assert "signature" not in m, m           # never which part of a signature failed
        if code != "TOKEN_EXPIRED":
            assert "expired" not in m, m         # the SDK's TokenExpiredError is for that one


def test_working_dir_errors(agent, tmp_path):
    f = tmp_path / "plain-file"
    f.write_text("x")
    m = is_error(agent.post("/commands/run", {"command": "true", "working_dir": str(f)}),
                 400, "DIRECTORY_NOT_FOUND")
    assert "not a directory" in m and "not found" not in m, m
    m = is_error(agent.post("/commands/run", {"command": "true", "cwd": str(tmp_path / "nope")}),
                 400, "DIRECTORY_NOT_FOUND")
    assert "no such" in m and "not found" not in m, m


def test_missing_typescript_runner_names_all_tried(agent):
    m = is_error(agent.post("/execute", {"code": "1", "language": "ts",
                                         "env": {"PATH": "/nonexistent"}}),
                 400, "EXECUTION_FAILED")
    for runner in ("tsx", "ts-node", "bun", "deno"):
        assert runner in m, m
    assert "not installed" in m


# ---- typed answers (item 3) ----

@pytest.mark.parametrize("method,path", [
    ("GET", "/desktop"), ("POST", "/desktop/vnc/start"), ("GET", "/desktop/vnc"),
    ("DELETE", "/desktop/x/y"), ("PUT", "/desktop/windows/1"),
])
def test_desktop_is_not_available(agent, method, path):
    m = is_error(agent.request(method, path, headers={"Content-Type": "application/json"},
                               raw_body=b""), 400, "DESKTOP_NOT_AVAILABLE")
    assert "desktop" in m
    is_error(agent.request(method, path, token=False), 401, "UNAUTHORIZED")
    assert agent.get("/desktopx").status == 404


def test_cache_endpoints(agent):
    for path in ("/cache", "/cache/stats"):
        r = agent.get(path)
        assert r.status == 200, r
        j = r.json()
        assert j["cache"]["size"] == 0 and j["cache"]["max_size"] == 0, j
        assert j["cache"]["total_hits"] == 0 and j["cache"]["ttl"] == 0 and j["timestamp"], j
    r = agent.request("POST", "/cache/clear", headers={"Content-Type": "application/json"},
                      raw_body=b"")
    assert r.status == 200 and r.json()["entries_removed"] == 0 and r.json()["message"], r


def run_out(agent, cmd):
    r = agent.post("/commands/run", {"command": cmd})
    assert r.status == 200, r
    return r.json()["stdout"]


def test_delete_one_env_key(agent):
    agent.request("DELETE", "/env")
    r = agent.request("PATCH", "/env", {"env_vars": {"PARITY_A": "1", "PARITY B": "2"}})
    assert r.status == 200, r
    r = agent.request("DELETE", "/env/PARITY_A")
    assert r.status == 200, r
    assert "PARITY_A" not in r.json()["env_vars"] and r.json()["env_vars"]["PARITY B"] == "2"
    assert run_out(agent, 'echo "[$PARITY_A]"') == "[]\n"
    # percent-encoded names, and an unset one (idempotent, like DELETE /env)
    r = agent.request("DELETE", "/env/PARITY%20B")
    assert r.status == 200 and "PARITY B" not in r.json()["env_vars"], r
    assert agent.request("DELETE", "/env/NEVER_SET_X").status == 200
    is_error(agent.request("DELETE", "/env/A%3DB"), 400, "INVALID_REQUEST")
    is_error(agent.request("DELETE", "/env/A%00B"), 400, "INVALID_REQUEST")
    agent.request("DELETE", "/env")


def test_delete_inherited_env_key(start_agent):
    a = start_agent(env={"PARITY_INHERITED": "yes"})
    assert run_out(a, 'echo "[$PARITY_INHERITED]"') == "[yes]\n"
    r = a.request("DELETE", "/env/PARITY_INHERITED")
    assert r.status == 200 and "PARITY_INHERITED" not in r.json()["env_vars"], r
    assert run_out(a, 'echo "[$PARITY_INHERITED]"') == "[]\n"
    a.request("DELETE", "/env")   # back to the inherited environment
    assert run_out(a, 'echo "[$PARITY_INHERITED]"') == "[yes]\n"


def test_system_processes_have_command_and_cpu(agent):
    p = start(agent, {"command": "while :; do :; done", "timeout": 60})
    try:
        pid = wait_for(lambda: get(agent, p["process_id"])["pid"], "pid")

        def busy():
            procs = agent.get("/processes").json()["processes"]
            me = [x for x in procs if x["pid"] == pid]
            return me and me[0]["cpu_percent"] > 0 and me[0]

        me = wait_for(busy, "cpu_percent > 0 for a busy loop")
        assert isinstance(me["cpu_percent"], (int, float)) and me["command"], me
        assert "while" in me["command"], me
        procs = agent.get("/processes").json()["processes"]
        assert all("command" in x and isinstance(x["cpu_percent"], (int, float)) for x in procs)
    finally:
        agent.post(f"/execute/kill/{p['process_id']}", {"signal": "KILL"})


def test_bodyless_posts_with_json_content_type(agent):
    p = start(agent, {"command": "sleep 30"})
    for method, path in [("POST", f"/execute/kill/{p['process_id']}"), ("POST", "/cache/clear"),
                         ("GET", "/env"), ("DELETE", "/env"), ("GET", "/execute/processes")]:
        for extra in ({"Content-Length": "0"}, {}):
            r = agent.request(method, path, headers={"Content-Type": "application/json", **extra})
            assert r.status == 200 or (r.status == 404 and "kill" in path), (method, path, r)
    assert wait_done(agent, p["process_id"])["reason"] == "killed"


def test_health_features_are_truthful(agent):
    h = agent.get("/health", token=False).json()
    f = h["features"]
    langs = f.pop("languages")
    assert all(isinstance(v, bool) for v in f.values()), f
    served = agent.get("/info").json()["endpoints"]
    paths = {e.split(" ", 1)[1] for e in served}
    assert f["commands"] and f["code"] and f["background"] and f["kill"] and f["env"]
    assert f["desktop"] is False and f["cache"] is False
    assert f["files"] == ("/files/read" in paths)
    assert f["terminal"] == ("/terminal" in paths)
    assert isinstance(langs, list) and "sh" in langs and "bash" in langs
    assert ("python" in langs) == bool(shutil.which("python3") or shutil.which("python"))
    assert ("ruby" in langs) == bool(shutil.which("ruby"))


# ---- timeouts (items 4 and 9) ----

def test_sync_timeout_zero_is_the_default(agent):
    r = agent.post("/commands/run", {"command": "echo hi", "timeout": 0})
    assert r.status == 200 and r.json()["timeout"] == 30 and r.json()["stdout"] == "hi\n", r
    r = agent.post("/execute", {"code": "echo 1", "language": "sh", "timeout": 0})
    assert r.status == 200 and r.json()["timeout"] == 30, r


def test_start_answers_carry_timeout(agent):
    for body, want in [({"command": "true"}, 300), ({"command": "true", "timeout": 0}, 0),
                       ({"command": "true", "timeout": 1.5}, 1.5),
                       ({"command": "true", "timeout": 12}, 12)]:
        p = start(agent, body)
        assert p["timeout"] == want, (body, p)
        assert wait_done(agent, p["process_id"])["timeout"] == want
    p = start(agent, {"code": "true", "language": "sh"}, "/execute/background")
    assert p["timeout"] == 300


def test_fractional_timeout_is_honoured_to_the_millisecond(agent):
    rec = wait_done(agent, start(agent, {"command": "sleep 30", "timeout": 0.001})["process_id"])
    assert rec["reason"] == "timeout" and rec["exit_code"] == 124 and rec["timeout"] == 0.001
    # rounding up to whole seconds would have let it run 1 s
    assert rec["execution_time"] < 0.95, rec
    m = is_error(agent.post("/commands/background", {"command": "true", "timeout": 0.0001}),
                 400, "INVALID_REQUEST")
    assert "millisecond" in m, m


def test_sync_answer_has_byte_counts_and_pid(agent):
    r = agent.post("/commands/run", {"command": "printf 12345; printf abc >&2"})
    j = r.json()
    assert j["stdout_bytes"] == 5 and j["stderr_bytes"] == 3, j
    assert isinstance(j["pid"], int) and j["pid"] > 0, j
    rec = get(agent, j["process_id"])
    assert rec["pid"] == j["pid"], rec   # pid kept on finished records


# ---- kill (item 9) ----

def start_ready(agent, script):
    p = start(agent, {"command": script, "timeout": 60})
    wait_for(lambda: "ready" in get(agent, p["process_id"])["stdout"], "ready")
    return p


def test_non_terminating_signal_is_delivered_once(start_agent):
    a = start_agent("--grace", "1")
    p = start_ready(a, "trap 'echo got; exit 0' USR1; echo ready; while :; do sleep 0.05; done")
    r = a.post(f"/execute/kill/{p['process_id']}", {"signal": "usr1"})
    assert r.status == 200, r
    j = r.json()
    assert j["signal"] == "SIGUSR1" and j["status"] == "running" and "once" in j["message"], j
    rec = wait_done(a, p["process_id"])
    assert rec["status"] == "completed" and rec["reason"] == "exit" and rec["exit_code"] == 0
    assert "got" in rec["stdout"]


def test_sigstop_is_not_escalated(start_agent):
    a = start_agent("--grace", "1")
    p = start_ready(a, "echo ready; while :; do sleep 0.05; done")
    pid = get(a, p["process_id"])["pid"]
    r = a.request("DELETE", "/execute/kill", body={"process_id": p["process_id"], "signal": "SIGSTOP"})
    assert r.status == 200 and r.json()["status"] == "running", r

    seen = []

    def stopped():
        """Some member of the group shows T. (The shell itself may show D: a STOP that
        lands between its vfork and the child's exec leaves it waiting on the child.)"""
        for d in os.listdir("/proc"):
            try:
                with open(f"/proc/{d}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except (OSError, ValueError, IndexError):
                continue
            if fields[2] == str(pid):   # pgrp
                seen.append(fields[0])
                if fields[0] in ("T", "t"):
                    return True
        return False

    try:
        wait_for(stopped, "the process to stop")
    except AssertionError:
        raise AssertionError(f"states seen: {sorted(set(seen))}; record {get(a, p['process_id'])}")
    # past the grace period: a kill would have escalated by now; a STOP must not
    time.sleep(1.5)
    rec = get(a, p["process_id"])
    assert rec["status"] == "running", rec
    assert a.post(f"/execute/kill/{p['process_id']}", {"signal": "CONT"}).status == 200
    r = a.post(f"/execute/kill/{p['process_id']}", {"signal": "kill"})
    assert r.json()["status"] == "killed", r
    rec = wait_done(a, p["process_id"])
    assert rec["reason"] == "killed" and rec["signal"] == "SIGKILL"


@pytest.mark.parametrize("name", ["sigint", "Int", "INT", "SIGINT", 2, "2"])
def test_terminating_signals_mark_killed_and_names_are_case_insensitive(agent, name):
    p = start_ready(agent, "trap 'exit 0' INT; echo ready; while :; do sleep 0.05; done")
    r = agent.post(f"/execute/kill/{p['process_id']}", {"signal": name})
    assert r.status == 200 and r.json()["status"] == "killed" and r.json()["signal"] == "SIGINT", r
    rec = wait_done(agent, p["process_id"])
    assert rec["reason"] == "killed" and rec["status"] == "failed", rec


def test_unknown_signal(agent):
    p = start(agent, {"command": "sleep 30"})
    for bad in ("SIGNOPE", "", -1, 0, 99, True, [15]):
        r = agent.post(f"/execute/kill/{p['process_id']}", {"signal": bad})
        assert r.status == 400, (bad, r)
    agent.post(f"/execute/kill/{p['process_id']}", {"signal": "Term"})
    assert wait_done(agent, p["process_id"])["reason"] == "killed"


def test_killing_a_queued_process_dequeues_it(start_agent):
    a = start_agent("--max-running", "1")
    first = start(a, {"command": "sleep 30"})
    queued = start(a, {"command": "echo never"})
    assert queued["status"] == "queued", queued
    is_error(a.post(f"/execute/kill/{queued['process_id']}", {"signal": "USR1"}), 409,
             "INVALID_REQUEST")
    r = a.post(f"/execute/kill/{queued['process_id']}")
    j = r.json()
    assert r.status == 200 and j["dequeued"] is True and "dequeued" in j["message"], j
    assert "signal sent" not in j["message"]
    rec = get(a, queued["process_id"])
    assert rec["status"] == "failed" and rec["reason"] == "killed", rec
    assert rec["exit_code"] is None and rec["pid"] is None and rec["stdout"] == "", rec
    a.post(f"/execute/kill/{first['process_id']}", {"signal": "KILL"})
    wait_done(a, first["process_id"])


# ---- queries ----

@pytest.mark.parametrize("value,with_output", [
    ("false", False), ("FALSE", False), ("0", False), ("no", False), ("Off", False),
    ("true", True), ("TRUE", True), ("1", True), ("yes", True), ("", True),
])
def test_output_query_spellings(agent, value, with_output):
    wait_done(agent, start(agent, {"command": "echo x"})["process_id"])
    r = agent.get(f"/execute/processes?output={value}")
    assert r.status == 200, r
    assert all(("stdout" in p) == with_output for p in r.json()["processes"])


def test_output_and_status_query_errors(agent):
    is_error(agent.get("/execute/processes?output=maybe"), 400, "INVALID_REQUEST")
    assert agent.get("/execute/processes?status=COMPLETED").status == 200
    is_error(agent.get("/execute/processes?status=done"), 400, "INVALID_REQUEST")


# ---- command line (item 9) ----

def test_token_help_and_ttl_checks():
    r = subprocess.run([BIN, "token", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--ttl" in r.stdout and "3600" in r.stdout, r
    env = dict(os.environ, SANDBOX_AGENT_JWT_SECRET=SECRET)
    for bad in ("0", "-5", "abc", "1.5", ""):
        r = subprocess.run([BIN, "token", "--ttl", bad], capture_output=True, text=True, env=env)
        assert r.returncode == 2 and "--ttl" in r.stderr and r.stdout == "", (bad, r)
    r = subprocess.run([BIN, "token", "--ttl", "60"], capture_output=True, text=True, env=env)
    assert r.returncode == 0 and r.stdout.count(".") == 2


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("how", ["PORT", "SANDBOX_AGENT_LISTEN"])
def test_make_run_port(tmp_path, how):
    """scripts/run.sh is what `make run` executes: PORT= and SANDBOX_AGENT_LISTEN choose
    where it listens."""
    work = tmp_path / "tree"
    (work / "build").mkdir(parents=True)
    port = free_port()
    env = dict(os.environ)
    env.pop("SANDBOX_AGENT_JWT_SECRET", None)
    if how == "PORT":
        env["PORT"] = str(port)
    else:
        env["SANDBOX_AGENT_LISTEN"] = f"127.0.0.1:{port}"
    p = subprocess.Popen(["sh", os.path.join(ROOT, "scripts/run.sh"), os.path.abspath(BIN)],
                         cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        lines = []
        while not any(l.startswith(b"listening on") for l in lines):
            line = p.stdout.readline()
            assert line, f"run.sh ended: {lines}"
            lines.append(line)
        assert f"127.0.0.1:{port}".encode() in lines[-1], lines
        assert f"http://127.0.0.1:{port}".encode() in lines[0], lines
    finally:
        p.terminate()
        p.wait(10)
    env["PORT"] = "eighty"
    r = subprocess.run(["sh", os.path.join(ROOT, "scripts/run.sh"), os.path.abspath(BIN)],
                       cwd=work, env=env, capture_output=True, text=True)
    assert r.returncode == 2 and "PORT" in r.stderr, r


def test_bench_writes_build_and_publishes_only_on_request(tmp_path):
    """make bench runs scripts/bench.sh: a copy of it in a scratch tree (no figures measured,
    BENCH_ONLY=none) writes the report into build/bench/ and touches the tracked bench/ only
    with PUBLISH=1."""
    if not shutil.which("musl-gcc"):
        pytest.skip("musl-gcc absent (scripts/deps.sh build installs it)")
    tree = tmp_path / "tree"
    for rel in ("scripts/bench.sh", "bench/bench.py", "bench/spawn_anchor.c",
                "bench/drain_anchor.c", "bench/anchor.h"):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(os.path.join(ROOT, rel), tree / rel)
    (tree / "bench" / "results.md").write_text("tracked\n")
    env = dict(os.environ, BENCH_ONLY="none")
    env.pop("PUBLISH", None)
    env.pop("BENCH_OUT", None)
    r = subprocess.run(["bash", str(tree / "scripts/bench.sh"), os.path.abspath(BIN)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tree / "build/bench/results.md").exists(), r.stderr
    assert (tree / "bench/results.md").read_text() == "tracked\n"
    assert not (tree / "bench/results.json").exists()
    env["PUBLISH"] = "1"
    r = subprocess.run(["bash", str(tree / "scripts/bench.sh"), os.path.abspath(BIN)],
                       env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert (tree / "bench/results.md").read_text() == \
        (tree / "build/bench/results.md").read_text() != "tracked\n"
    assert (tree / "bench/results.json").exists()
