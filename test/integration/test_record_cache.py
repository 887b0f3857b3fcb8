"""A finished record's JSON is rendered once and kept (api_proc.c, proc_cache_set): what a
client sees must be exactly what a fresh rendering would give, in both forms, and the kept
bytes count against the output budget."""
import time

from conftest import TERMINAL


def run_bg(agent, command, **extra):
    r = agent.post("/commands/background", dict(command=command, **extra))
    assert r.status == 200, r
    return r.json()["process_id"]


def wait_all(agent, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs = agent.get("/execute/processes?output=false").json()["processes"]
        if all(p["status"] in TERMINAL for p in procs):
            return procs
        time.sleep(0.02)
    raise AssertionError("processes did not finish")


def test_finished_records_read_the_same_every_time(agent):
    ids = [run_bg(agent, "printf 'out %d\\n' " + str(i), name="cache-a") for i in range(3)]
    ids.append(run_bg(agent, "echo err >&2; exit 3", name="cache-a"))
    # bigger than the cache's cap: rendered per request, same answers
    ids.append(run_bg(agent, "head -c 30000 /dev/zero | tr '\\0' x", name="cache-a"))
    wait_all(agent)
    first = agent.get("/execute/processes?name=cache-a")
    again = agent.get("/execute/processes?name=cache-a")
    assert first.status == again.status == 200
    assert first.body == again.body
    full = first.json()["processes"]
    assert [p["process_id"] for p in full] == ids
    assert full[1]["stdout"] == "out 1\n" and full[3]["stderr"] == "err\n"
    assert full[3]["status"] == "failed" and full[3]["exit_code"] == 3
    assert full[4]["stdout"] == "x" * 30000
    short = agent.get("/execute/processes?name=cache-a&output=false").json()["processes"]
    for f, s in zip(full, short):
        assert "stdout" not in s and "stderr" not in s
        assert {k: v for k, v in f.items() if k not in ("stdout", "stderr")} == s
    # the single-record endpoint serves the same bytes as the list entry
    for pid, f in zip(ids, full):
        one = agent.get(f"/execute/processes/{pid}")
        assert one.status == 200 and one.json() == f
        assert one.body in first.body


def test_running_records_are_not_frozen(agent, tmp_path):
    gate = tmp_path / "gate"   # held running until the test has looked: a state, not a pause
    pid = run_bg(agent, f"echo start; while [ ! -e {gate} ]; do sleep 0.02; done; echo end")
    deadline = time.monotonic() + 60
    rec = agent.get(f"/execute/processes/{pid}").json()
    while rec["stdout"] != "start\n" and time.monotonic() < deadline:
        time.sleep(0.02)
        rec = agent.get(f"/execute/processes/{pid}").json()
    assert rec["status"] == "running" and rec["pid"] and rec["completed_at"] is None
    assert rec["stdout"] == "start\n"
    gate.write_text("")
    deadline = time.monotonic() + 60
    while rec["status"] == "running" and time.monotonic() < deadline:
        time.sleep(0.05)
        rec = agent.get(f"/execute/processes/{pid}").json()
    assert rec["status"] == "completed" and rec["stdout"] == "start\nend\n"
    assert rec["pid"] and rec["completed_at"] is not None   # pid kept once finished


def wait_ids(agent, ids, timeout=30):
    """Until each has finished, read from the output endpoint's header: it renders no record."""
    deadline = time.monotonic() + timeout
    for pid in ids:
        while agent.get(f"/execute/processes/{pid}/output?offset=999999").header(
                "X-Process-Status") not in TERMINAL:
            assert time.monotonic() < deadline, "processes did not finish"
            time.sleep(0.02)


def test_kept_renderings_count_against_the_output_budget(start_agent):
    # 4000 bytes of stdout keep a 4 KiB ring (RING_MIN): ten records are 40 960 bytes, under
    # a 46 000-byte budget; listing them keeps ~4.9 KiB of rendering each, which passes it,
    # so the next start evicts the oldest
    cmd = "head -c 4000 /dev/zero | tr '\\0' y"
    a = start_agent("--output-budget", "46000")
    wait_ids(a, [run_bg(a, cmd) for i in range(10)])
    procs = a.get("/execute/processes").json()["processes"]
    assert len(procs) == 10 and procs[0]["stdout"] == "y" * 4000
    wait_ids(a, [run_bg(a, "echo one more")])
    assert a.get("/execute/processes?output=false").json()["count"] < 11
    # without a list in between, eleven rings fit (45 056 bytes): nothing is evicted
    b = start_agent("--output-budget", "46000")
    wait_ids(b, [run_bg(b, cmd) for i in range(11)])
    assert b.get("/execute/processes?output=false").json()["count"] == 11


def test_finished_rings_keep_only_their_bytes(start_agent):
    # a line of output first takes a 4 KiB ring; once finished the record keeps the line only,
    # so forty such records fit a budget that ten 4 KiB rings would fill
    a = start_agent("--output-budget", "46000")
    ids = [run_bg(a, f"echo line {i}; echo err {i} >&2") for i in range(40)]
    wait_ids(a, ids)
    procs = a.get("/execute/processes").json()["processes"]
    assert [p["process_id"] for p in procs] == ids
    assert procs[7]["stdout"] == "line 7\n" and procs[7]["stderr"] == "err 7\n"
    # a partly filled ring (3000 of 4096 bytes) shrinks too; offsets still address it
    pid = run_bg(a, "head -c 3000 /dev/zero | tr '\\0' z")
    wait_ids(a, [pid])
    r = a.get(f"/execute/processes/{pid}/output?offset=2990")
    assert r.body == b"z" * 10 and r.header("X-Output-Start") == "2990"
    assert r.header("X-Output-Next-Offset") == "3000"
    assert a.get(f"/execute/processes/{pid}").json()["stdout"] == "z" * 3000


def test_forgetting_a_listed_record_frees_it(agent):
    pid = run_bg(agent, "echo bye", name="cache-forget")
    wait_all(agent)
    assert agent.get(f"/execute/processes/{pid}").status == 200   # rendered and kept
    assert agent.request("DELETE", f"/execute/processes/{pid}").status == 200
    assert agent.get(f"/execute/processes/{pid}").status == 404
    assert agent.get("/execute/processes?name=cache-forget").json()["count"] == 0


def test_tail_kept_exactly_when_the_ring_wraps(start_agent):
    # a full-size ring is read into directly (proc.c pipe_drain): odd sizes, many wraps
    full = "".join(f"line {i:05d} " + "x" * (i % 37) + "\n" for i in range(6000)).encode()
    for limit in ("4096", "5003", "70001"):
        a = start_agent("--output-limit", limit)
        pid = run_bg(a, "awk 'BEGIN { for (i = 0; i < 6000; i++) { s = \"\"; "
                        "for (j = 0; j < i % 37; j++) s = s \"x\"; "
                        "printf \"line %05d %s\\n\", i, s; fflush() } }'")
        wait_ids(a, [pid], timeout=120)
        rec = a.get(f"/execute/processes/{pid}").json()
        n = int(limit)
        assert rec["stdout_bytes"] == len(full) and rec["stdout_truncated"]
        assert rec["stdout"].encode() == full[-n:]
        r = a.get(f"/execute/processes/{pid}/output?offset=0")
        assert r.body == full[-n:] and int(r.header("X-Output-Start")) == len(full) - n
        a.stop()
