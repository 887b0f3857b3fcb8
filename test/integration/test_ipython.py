"""Python sessions through the real binary: POST /execute/ipython, GET /jupyter/sessions,
DELETE /jupyter/sessions/{id}. The agent runs Debian's /usr/bin/python3 first on PATH (it
has python3-matplotlib and python3-ipython from scripts/deps.sh); what a test needs from
the interpreter it asks the session itself, and skips when it is absent."""
import base64
import json
import os
import re
import time

import pytest

from conftest import Agent, read_response

PATH = "/usr/bin:/bin:" + os.environ.get("PATH", "")


def ipy(agent, code, wait=60, **fields):
    body = {"code": code, **fields}
    r = agent.post("/execute/ipython", body, timeout=wait)
    assert r is not None and r.status in (200, 400, 408, 429, 503), r
    return r


def ok(agent, code, **fields):
    r = ipy(agent, code, **fields)
    assert r.status == 200, r
    j = r.json()
    assert j["success"], j
    return j


def send(agent, body):
    """Sends a request without waiting for its answer; returns the socket."""
    raw = json.dumps(body).encode()
    s = agent.connect(timeout=60)
    s.sendall((f"POST /execute/ipython HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {agent.token()}\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n").encode() + raw)
    return s


def sessions(agent):
    r = agent.get("/jupyter/sessions")
    assert r.status == 200, r
    return {s["id"]: s for s in r.json()["sessions"]}


def wait_for(pred, what, timeout=30):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def gone(pid):
    """True once pid no longer exists (reaped, not a zombie)."""
    return not os.path.exists(f"/proc/{pid}")


def has_module(agent, name, session="default"):
    j = ipy(agent, f"import importlib.util\nimportlib.util.find_spec({name!r}) is not None",
            session=session).json()
    return j["result"] == "True"


@pytest.fixture(scope="module")
def py(tmp_path_factory):
    a = Agent(env={"PATH": PATH}, tmp=tmp_path_factory.mktemp("ipy"))
    yield a
    rc = a.stop()
    assert rc == 0, f"agent exited {rc}; log:\n{a.log()[-3000:]}"


@pytest.fixture(autouse=True)
def _end_sessions(request):
    """Each test's sessions end with it: interpreters hold tens of MB each."""
    yield
    if "py" in request.fixturenames:
        a = request.getfixturevalue("py")
        for sid in sessions(a):
            a.request("DELETE", f"/jupyter/sessions/{sid}")


# ---- state, results, errors, output ----

def test_state_persists_between_calls(py):
    a = ok(py, "x = 41", session="state")
    b = ok(py, "x + 1", session="state")
    assert b["result"] == "42"
    assert b["execution_count"] == a["execution_count"] + 1
    assert b["session"] == "state" and re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}",
                                                     b["kernel_id"])
    assert b["kernel_id"] == a["kernel_id"]
    for k in ("stdout", "stderr", "exit_code", "execution_time", "timestamp", "timed_out"):
        assert k in b
    assert b["exit_code"] == 0 and b["timed_out"] is False and b["language"] == "python"


def test_result_is_the_repr_of_the_last_expression(py):
    assert ok(py, "'a' + 'b'")["result"] == "'ab'"
    assert ok(py, "d = {'k': [1, 2]}\nd")["result"] == "{'k': [1, 2]}"
    assert ok(py, "y = 3")["result"] is None
    assert ok(py, "None")["result"] is None
    assert ok(py, "_ = 5\nprint('p')")["stdout"] == "p\n"
    assert ok(py, "q = 1\nq + 1;  # shown in IPython only without the ';'")["result"] is None
    assert ok(py, "q")["result"] == "1"


def test_top_level_await(py):
    j = ok(py, "import asyncio\nasync def twice(x):\n    await asyncio.sleep(0)\n    return 2 * x\n"
               "v = await twice(3)\nawait twice(v)", session="aw")
    assert j["result"] == "12"
    assert ok(py, "asyncio.run(twice(5))", session="aw")["result"] == "10"


def test_error_with_traceback(py):
    r = ipy(py, "def f():\n    return 1 / 0\nf()")
    assert r.status == 200
    j = r.json()
    assert j["success"] is False and j["exit_code"] == 1
    e = j["error"]
    assert e["name"] == "ZeroDivisionError" and e["value"] == "division by zero"
    assert "line 2, in f" in e["traceback"] and "1 / 0" in e["traceback"]
    assert "<sandbox-agent>" not in e["traceback"]
    assert "ZeroDivisionError" in j["stderr"]
    j = ipy(py, "def (:").json()
    assert j["error"]["name"] == "SyntaxError" and j["success"] is False
    # the session is fine afterwards
    assert ok(py, "2 * 21")["result"] == "42"


def test_stdout_and_stderr_apart(py):
    j = ok(py, "import sys\nprint('to out')\nprint('to err', file=sys.stderr)\n"
               "sys.stdout.write('more out\\n')")
    assert j["stdout"] == "to out\nmore out\n"
    assert j["stderr"] == "to err\n"


def test_subprocess_and_raw_descriptor_output(py):
    j = ok(py, "import os, subprocess\nos.write(1, b'raw\\n')\n"
               "subprocess.run(['echo', 'from child'])\n"
               "os.system('echo child err 1>&2')\n"
               "print('py')")
    assert j["stdout"] == "raw\nfrom child\npy\n"
    assert j["stderr"] == "child err\n"


def test_output_cannot_break_the_protocol(py):
    # bytes that look like frames, NULs, invalid UTF-8 and a lot of it, on every path
    code = ("import os, sys\n"
            "junk = b'\\x00\\x00\\x00\\x10{\"ready\": true}' + bytes(range(256))\n"
            "for i in range(200):\n"
            "    os.write(1, junk)\n"
            "    sys.stderr.buffer.write(junk)\n"
            "print('end')\n"
            "'fine'")
    j = ok(py, code, session="junk")
    assert j["result"] == "'fine'" and j["stdout"].endswith("end\n")
    assert ok(py, "1 + 1", session="junk")["result"] == "2"


def test_a_fork_that_returns_does_not_answer(py):
    j = ok(py, "import os\npid = os.fork()\nif pid == 0:\n    print('child', flush=True)\n"
               "else:\n    os.waitpid(pid, 0)\n'parent' if pid else 'child'", session="fork")
    assert j["result"] == "'parent'" and j["stdout"] == "child\n"
    assert ok(py, "2 + 2", session="fork")["result"] == "4"


def test_big_output_is_kept_to_the_limit(start_agent):
    a = start_agent("--output-limit", "4096", env={"PATH": PATH})
    j = ok(a, "print('x' * 100000)\nprint('tail')")
    assert j["stdout_truncated"] is True and len(j["stdout"]) == 4096
    assert j["stdout"].endswith("x\ntail\n")
    assert ok(a, "print('small')")["stdout"] == "small\n"


def test_env_and_working_dir(py, tmp_path):
    sub = tmp_path / "here"
    sub.mkdir()
    j = ok(py, "import os\n(os.environ['IPY_FOO'], os.getcwd())",
           env={"IPY_FOO": "bar"}, working_dir=str(sub), session="envcwd")
    assert j["result"] == repr(("bar", str(sub)))
    # both stay, as the code's own os.environ/os.chdir would
    assert ok(py, "os.environ['IPY_FOO']", session="envcwd")["result"] == "'bar'"


def test_bad_requests(py):
    r = ipy(py, None)
    assert r.status == 400 and r.json()["code"] == "MISSING_PARAMETER"
    r = py.post("/execute/ipython", {})
    assert r.status == 400 and r.json()["code"] == "MISSING_PARAMETER"
    for body in ({"code": "1", "session": "a/b"}, {"code": "1", "session": "x" * 65},
                 {"code": "1", "timeout": -1}, {"code": "1", "timeout": "soon"},
                 {"code": "1", "env": ["A=1"]}, {"code": 5}):
        r = py.post("/execute/ipython", body)
        assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST", (body, r)
    r = py.post("/execute/ipython", {"code": "1", "working_dir": "/no/such/dir"})
    assert r.status == 400 and r.json()["code"] == "DIRECTORY_NOT_FOUND"
    r = py.post("/execute/ipython", raw_body=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.json()["code"] == "INVALID_JSON"
    r = py.get("/execute/ipython")
    assert r.status == 405


# ---- rich outputs ----

def test_rich_outputs_from_repr_methods(py):
    code = ("class R:\n"
            "    def _repr_html_(self): return '<b>bold</b>'\n"
            "    def _repr_png_(self): return b'\\x89PNG\\r\\n'\n"
            "    def _repr_markdown_(self): return '# title'\n"
            "    def _repr_svg_(self): return '<svg></svg>'\n"
            "    def _repr_json_(self): return {'a': [1, 2]}\n"
            "    def __repr__(self): return 'R()'\n"
            "R()")
    j = ok(py, code)
    assert j["result"] == "R()"
    assert j["html"] == "<b>bold</b>" and j["markdown"] == "# title" and j["svg"] == "<svg></svg>"
    assert base64.b64decode(j["png"]) == b"\x89PNG\r\n"
    assert j["json"] == {"a": [1, 2]}
    assert len(j["rich_outputs"]) == 1
    data = j["rich_outputs"][0]["data"]
    assert data["text/html"] == "<b>bold</b>" and data["application/json"] == {"a": [1, 2]}


def test_outputs_too_large_to_return(py):
    code = ("class J:\n"
            "    def _repr_json_(self): return list(range(70000))\n"
            "print('ran')\n"
            "J()")
    j = ipy(py, code, session="huge").json()
    assert j["success"] is False and j["error"]["name"] == "OutputTooLarge"
    assert j["stdout"] == "ran\n"
    assert ok(py, "'alive'", session="huge")["execution_count"] == 2


def test_display_inside_a_cell(py):
    code = ("class H:\n"
            "    def __init__(self, s): self.s = s\n"
            "    def _repr_html_(self): return self.s\n"
            "display(H('<i>one</i>'))\n"
            "print('between')\n"
            "display(H('<i>two</i>'))\n"
            "R = H  # classes themselves are not rendered\n"
            "H")
    j = ok(py, code)
    assert [o["data"]["text/html"] for o in j["rich_outputs"]] == ["<i>one</i>", "<i>two</i>"]
    assert j["html"] == "<i>one</i>" and j["stdout"] == "between\n"


def test_matplotlib_figures(py):
    if not has_module(py, "matplotlib", session="mpl"):
        pytest.skip("matplotlib is not installed for this python3 (scripts/deps.sh test)")
    j = ok(py, "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.show()\n"
               "print('shown')", session="mpl")
    assert len(j["rich_outputs"]) == 1 and j["stdout"] == "shown\n"
    assert base64.b64decode(j["png"]).startswith(b"\x89PNG\r\n\x1a\n")
    # a figure as the cell's value: one image, not two
    j = ok(py, "fig, ax = plt.subplots()\nax.bar([1, 2], [3, 4])\nfig", session="mpl")
    assert len(j["rich_outputs"]) == 1 and j["result"].startswith("<Figure")
    # figures left open without show() are shown at the end of the cell, then closed
    j = ok(py, "plt.figure(); plt.plot([1]); plt.figure(); plt.plot([2]); None", session="mpl")
    assert len(j["rich_outputs"]) == 2
    assert ok(py, "len(plt.get_fignums())", session="mpl")["result"] == "0"


# ---- timeouts, restarts, death ----

def test_timeout_interrupts_and_the_session_survives(py):
    ok(py, "kept = 'still here'", session="intr")
    t0 = time.monotonic()
    r = ipy(py, "import time\nprint('started')\ntime.sleep(60)", session="intr", timeout=1)
    assert r.status == 408, r
    assert time.monotonic() - t0 < 20
    j = r.json()
    assert j["timed_out"] is True and j["code"] == "EXECUTION_TIMEOUT" and j["success"] is False
    assert j["error"]["name"] == "KeyboardInterrupt" and j["restarted"] is False
    assert j["stdout"] == "started\n"
    assert "<sandbox-agent>" not in j["error"]["traceback"]
    assert ok(py, "kept", session="intr")["result"] == "'still here'"


def test_timeout_that_ignores_the_interrupt_restarts(py):
    first = ok(py, "lost = 1", session="stubborn")
    code = ("while True:\n"
            "    try:\n"
            "        while True:\n"
            "            pass\n"
            "    except KeyboardInterrupt:\n"
            "        pass\n")
    r = ipy(py, code, session="stubborn", timeout=1)
    assert r.status == 408, r
    j = r.json()
    assert j["timed_out"] and j["restarted"] is True and j["restart_reason"] == "timeout"
    assert j["kernel_id"] == first["kernel_id"]
    j = ok(py, "'lost' in dir()", session="stubborn")
    assert j["result"] == "False" and j["restarted"] is False and j["execution_count"] == 1


def test_interpreter_death_is_told_and_the_next_call_restarts(py):
    ok(py, "before = 1", session="die")
    pid = sessions(py)["die"]["pid"]
    j = ipy(py, "import os\nprint('bye', flush=True)\nos._exit(3)", session="die").json()
    assert j["success"] is False and j["exit_code"] == 3
    assert j["error"]["name"] == "InterpreterExited" and j["stdout"] == "bye\n"
    wait_for(lambda: gone(pid), "the dead interpreter to be reaped")
    assert sessions(py)["die"]["execution_state"] == "dead"
    j = ok(py, "'before' in dir()", session="die")
    assert j["restarted"] is True and j["restart_reason"] == "died" and j["result"] == "False"
    j = ok(py, "1", session="die")
    assert j["restarted"] is False


def test_killed_from_outside_is_death_too(py):
    ok(py, "1", session="ext")
    pid = sessions(py)["ext"]["pid"]
    os.kill(pid, 9)
    wait_for(lambda: sessions(py)["ext"]["execution_state"] == "dead", "the session to be dead")
    j = ok(py, "2", session="ext")
    assert j["restarted"] is True and j["restart_reason"] == "died"


# ---- ordering, sessions, bounds ----

def test_calls_to_one_session_run_in_order(py):
    ok(py, "order = []", session="ord")
    socks = [send(py, {"code": "import time\ntime.sleep(0.5)\norder.append('A')", "session": "ord"})]
    wait_for(lambda: sessions(py)["ord"]["execution_state"] == "busy", "A to run")
    for i, name in enumerate("BCD", 1):
        socks.append(send(py, {"code": f"order.append({name!r})\nlen(order)", "session": "ord"}))
        wait_for(lambda: sessions(py)["ord"]["queued"] == i, f"{name} to be queued")
    # another session is not held up by this one
    assert ok(py, "'free'", session="other")["result"] == "'free'"
    answers = []
    for s in socks:
        r = read_response(s)
        s.close()
        assert r.status == 200, r
        answers.append(r.json())
    assert [a["result"] for a in answers[1:]] == ["2", "3", "4"]
    counts = [a["execution_count"] for a in answers]
    assert counts == sorted(counts) and len(set(counts)) == 4
    assert ok(py, "order", session="ord")["result"] == "['A', 'B', 'C', 'D']"


def test_idempotency_key_runs_once(py):
    ok(py, "runs = 0", session="idem")
    body = {"code": "runs += 1\nruns", "session": "idem"}
    h = {"Idempotency-Key": "ipy-once-1"}
    first = py.post("/execute/ipython", body, headers=h)
    again = py.post("/execute/ipython", body, headers=h)
    assert first.status == again.status == 200
    assert again.header("idempotent-replayed") == "true"
    assert again.json()["result"] == first.json()["result"] == "1"
    assert ok(py, "runs", session="idem")["result"] == "1"


def test_client_leaving_does_not_stop_the_session(py):
    s = send(py, {"code": "import time\ntime.sleep(0.3)\nleft = 'done'", "session": "leave"})
    wait_for(lambda: sessions(py).get("leave", {}).get("execution_state") == "busy", "the call")
    s.close()
    wait_for(lambda: sessions(py)["leave"]["execution_state"] == "idle", "the call to end")
    assert ok(py, "left", session="leave")["result"] == "'done'"


def test_session_list_and_delete(py):
    ok(py, "1", session="listed")
    s = sessions(py)["listed"]
    assert s["execution_state"] == "idle" and s["execution_count"] >= 1
    assert s["kernel"]["id"] == s["kernel_id"]
    for k in ("created_at", "last_used_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s[k])
    r = py.request("DELETE", "/jupyter/sessions/listed")
    assert r.status == 200 and r.json() == {"id": "listed", "deleted": True}
    assert "listed" not in sessions(py)
    wait_for(lambda: gone(s["pid"]), "the deleted interpreter to end")
    r = py.request("DELETE", "/jupyter/sessions/listed")
    assert r.status == 404 and r.json()["code"] == "NOT_FOUND"
    # the same id again is a new interpreter
    j = ok(py, "'fresh'", session="listed")
    assert j["execution_count"] == 1 and j["kernel_id"] != s["kernel_id"]


def test_delete_answers_the_running_call(py):
    s = send(py, {"code": "import time\ntime.sleep(60)", "session": "doomed"})
    wait_for(lambda: sessions(py).get("doomed", {}).get("execution_state") == "busy", "the call")
    assert py.request("DELETE", "/jupyter/sessions/doomed").status == 200
    r = read_response(s)
    s.close()
    assert r.status == 200 and r.json()["error"]["name"] == "SessionEnded"


def test_session_count_is_bounded(start_agent):
    a = start_agent("--python-sessions", "2", env={"PATH": PATH})
    ok(a, "1", session="one")
    ok(a, "1", session="two")
    r = ipy(a, "1", session="three")
    assert r.status == 429 and r.json()["code"] == "EXECUTION_FAILED"
    assert a.request("DELETE", "/jupyter/sessions/one").status == 200
    ok(a, "1", session="three")


def test_queue_is_bounded(start_agent):
    a = start_agent(env={"PATH": PATH})
    ok(a, "import time")
    socks = [send(a, {"code": "time.sleep(1)"})]
    wait_for(lambda: sessions(a)["default"]["execution_state"] == "busy", "the first call")
    for i in range(1, 17):
        socks.append(send(a, {"code": "1"}))
        wait_for(lambda: sessions(a)["default"]["queued"] == i, f"call {i} to queue")
    r = ipy(a, "1")
    assert r.status == 429, r
    for s in socks:
        assert read_response(s).status == 200
        s.close()


def test_idle_sessions_expire(start_agent):
    a = start_agent("--python-idle", "1", env={"PATH": PATH})
    ok(a, "1", session="idle")
    pid = sessions(a)["idle"]["pid"]
    wait_for(lambda: "idle" not in sessions(a), "the idle session to end")
    wait_for(lambda: gone(pid), "its interpreter to end")
    assert ok(a, "'back'", session="idle")["execution_count"] == 1


def test_shutdown_ends_interpreters(start_agent):
    a = start_agent(env={"PATH": PATH})
    ok(a, "1")
    pid = sessions(a)["default"]["pid"]
    s = send(a, {"code": "import time\ntime.sleep(60)", "session": "busy"})
    wait_for(lambda: sessions(a).get("busy", {}).get("execution_state") == "busy", "the call")
    assert a.stop() == 0
    r = read_response(s)
    s.close()
    assert r is None or r.status == 503
    wait_for(lambda: gone(pid), "the interpreter to end")


# ---- interpreters ----

def test_missing_python(start_agent, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    a = start_agent(env={"PATH": str(empty)})
    r = ipy(a, "1")
    assert r.status == 400 and r.json()["code"] == "EXECUTION_FAILED"
    assert "python3" in r.json()["message"]
    assert sessions(a) == {}


def test_interpreter_that_cannot_start(start_agent, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "python3"
    wrapper.write_text("#!/bin/sh\necho 'broken python' >&2\nexit 5\n")
    wrapper.chmod(0o755)
    a = start_agent(env={"PATH": f"{bindir}:/usr/bin:/bin"})
    r = ipy(a, "1")
    assert r.status == 400, r
    j = r.json()
    assert j["code"] == "EXECUTION_FAILED" and j["error"]["name"] == "InterpreterStartFailed"
    assert "broken python" in j["stderr"] and "exit code 5" in j["message"]
    assert sessions(a)["default"]["execution_state"] == "dead"
    assert ipy(a, "1").status == 400   # tried again, not a respawn loop


def test_plain_python_without_ipython(start_agent, tmp_path):
    """python3 -S has no site-packages, so no IPython: the stdlib path of the driver."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "python3"
    wrapper.write_text("#!/bin/sh\nexec /usr/bin/python3 -S \"$@\"\n")
    wrapper.chmod(0o755)
    a = start_agent(env={"PATH": f"{bindir}:/usr/bin:/bin"})
    assert ok(a, "v = 2\nv ** 10")["result"] == "1024"
    assert sessions(a)["default"]["ipython"] is False
    j = ipy(a, "%time 1").json()
    assert j["error"]["name"] == "SyntaxError"


def test_ipython_magics(py):
    ok(py, "1", session="magic")
    if not sessions(py)["magic"]["ipython"]:
        pytest.skip("IPython is not installed for this python3 (scripts/deps.sh test)")
    j = ok(py, "!echo shell says hi", session="magic")
    assert "shell says hi" in j["stdout"]
    j = ok(py, "%timeit -n1 -r1 sum(range(10))", session="magic")
    assert "loop" in j["stdout"]


def test_user_modules_do_not_shadow_the_driver(start_agent, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "json.py").write_text("raise RuntimeError('user json.py imported by the driver')\n")
    (work / "mymod.py").write_text("VALUE = 'mine'\n")
    a = start_agent(env={"PATH": PATH}, workdir=str(work))
    # the driver started (it uses json), and user code still imports from the workdir
    assert ok(a, "import mymod\nmymod.VALUE")["result"] == "'mine'"
