"""Idempotency-Key (issue 12 item 5): a state-changing request that repeats a key gets the
first answer again and starts nothing; per caller, method and path; bounded."""
import json
import time
import uuid

from conftest import read_response, wait_done


def keyed(agent, method, path, key, body=None, token=True):
    return agent.request(method, path, body=body, headers={"Idempotency-Key": key}, token=token)


def named(agent, name):
    r = agent.get(f"/execute/processes?name={name}&output=false")
    assert r.status == 200, r
    return r.json()["processes"]


def test_background_start_is_not_repeated(agent):
    key, name = str(uuid.uuid4()), "idem-bg-" + uuid.uuid4().hex[:8]
    body = {"command": "echo once", "name": name}
    first = keyed(agent, "POST", "/commands/background", key, body)
    assert first.status == 200, first
    again = keyed(agent, "POST", "/commands/background", key, body)
    assert again.status == 200 and again.body == first.body
    assert again.header("idempotent-replayed") == "true"
    assert first.header("idempotent-replayed") is None
    assert len(named(agent, name)) == 1
    wait_done(agent, first.json()["process_id"])
    # another key, another path, another token: each a new request
    other = keyed(agent, "POST", "/commands/background", str(uuid.uuid4()), body)
    assert other.json()["process_id"] != first.json()["process_id"]
    code = keyed(agent, "POST", "/execute/background", key, {"code": "print(1)", "name": name})
    assert code.status == 200 and code.header("idempotent-replayed") is None
    tok = keyed(agent, "POST", "/commands/background", key, body, token=agent.token(ttl=900))
    assert tok.status == 200 and tok.header("idempotent-replayed") is None
    assert len(named(agent, name)) == 4
    for p in named(agent, name):
        wait_done(agent, p["process_id"])


def test_another_body_with_the_same_key_is_refused(agent):
    key = str(uuid.uuid4())
    assert keyed(agent, "PATCH", "/env", key, {"env_vars": {"IDEM_A": "1"}}).status == 200
    r = keyed(agent, "PATCH", "/env", key, {"env_vars": {"IDEM_A": "2"}})
    assert r.status == 409, r
    assert r.json()["code"] == "IDEMPOTENCY_CONFLICT"
    assert "different request body" in r.json()["message"]
    assert agent.get("/env").json()["env_vars"]["IDEM_A"] == "1"


def test_errors_are_replayed_and_5xx_never_kept(agent):
    key = str(uuid.uuid4())
    r1 = keyed(agent, "POST", "/commands/run", key, {"timeout": 5})
    assert r1.status == 400, r1
    r2 = keyed(agent, "POST", "/commands/run", key, {"timeout": 5})
    assert r2.status == 400 and r2.body == r1.body and r2.header("idempotent-replayed") == "true"


def test_sync_run_repeat_while_running_then_replayed(agent, tmp_path):
    """The first run is parked: a repeat gets 409 (nothing started twice); once the first
    answer went out, a repeat gets it again, byte for byte."""
    go = tmp_path / "go"
    name = "idem-sync-" + uuid.uuid4().hex[:8]
    body = {"command": f"while [ ! -e {go} ]; do sleep 0.02; done; echo ran; date +%s%N",
            "name": name, "timeout": 60}
    key = str(uuid.uuid4())
    raw = (f"POST /commands/run HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {agent.token()}\r\n"
           f"Idempotency-Key: {key}\r\nContent-Type: application/json\r\n")
    data = json.dumps(body).encode()
    with agent.connect(timeout=60) as s:
        s.sendall(raw.encode() + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
        # wait for the state: the first run's process is running
        end = time.monotonic() + 60
        while not [p for p in named(agent, name) if p["status"] == "running"]:
            assert time.monotonic() < end, "the first run never started"
            time.sleep(0.02)
        busy = keyed(agent, "POST", "/commands/run", key, body)
        assert busy.status == 409, busy
        assert busy.json()["code"] == "IDEMPOTENCY_CONFLICT"
        assert "still running" in busy.json()["message"]
        go.write_text("")
        first = read_response(s)
    assert first.status == 200 and first.json()["stdout"].startswith("ran\n"), first
    again = keyed(agent, "POST", "/commands/run", key, body)
    assert again.status == 200 and again.body == first.body
    assert again.header("idempotent-replayed") == "true"
    assert len(named(agent, name)) == 1


def test_kill_repeat_gets_the_first_answer(agent):
    p = agent.post("/commands/background", {"command": "sleep 60"}).json()["process_id"]
    key = str(uuid.uuid4())
    first = keyed(agent, "POST", f"/execute/kill/{p}", key, {})
    assert first.status == 200, first
    wait_done(agent, p)
    again = keyed(agent, "POST", f"/execute/kill/{p}", key, {})
    assert again.status == 200 and again.body == first.body
    plain = agent.post(f"/execute/kill/{p}", {})
    assert plain.status == 404   # without the key, a kill of a finished process


def test_get_ignores_the_key_and_bad_keys_are_refused(agent):
    assert keyed(agent, "GET", "/health", "x", token=False).status == 200
    for bad in ["a" * 256, "has space", "caf\u00e9"]:
        r = agent.request("POST", "/commands/background", body={"command": "true"},
                          headers={"Idempotency-Key": bad.encode("utf-8").decode("latin-1")})
        assert r.status == 400, (bad, r)
        assert "Idempotency-Key" in r.json()["message"]


def test_keys_are_bounded(start_agent):
    """More keyed requests than LIMIT_IDEM_KEYS: the oldest keys are forgotten, memory
    stays bounded. Pipelined on one connection (404 answers are kept like any other)."""
    a = start_agent()
    limits = a.get("/info").json()
    n = limits["limits"]["max_idempotency_keys"] + 50
    tok = a.token()
    with a.connect(timeout=60) as s:
        batch = 500
        for start in range(0, n, batch):
            reqs = b"".join(
                (f"DELETE /execute/processes/proc_{i:016x} HTTP/1.1\r\nHost: a\r\n"
                 f"Authorization: Bearer {tok}\r\nIdempotency-Key: key-{i}\r\n\r\n").encode()
                for i in range(start, min(n, start + batch)))
            s.sendall(reqs)
            for _ in range(start, min(n, start + batch)):
                r = read_response(s)
                assert r is not None and r.status == 404, r
    info = a.get("/info").json()
    assert info["idempotency_keys"] == limits["limits"]["max_idempotency_keys"]
    assert info["idempotency_bytes"] < 4 << 20
    old = a.request("DELETE", "/execute/processes/proc_0000000000000000",
                    headers={"Idempotency-Key": "key-0"})
    assert old.header("idempotent-replayed") is None
    new = a.request("DELETE", f"/execute/processes/proc_{n - 1:016x}",
                    headers={"Idempotency-Key": f"key-{n - 1}"})
    assert new.header("idempotent-replayed") == "true"
