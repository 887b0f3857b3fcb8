"""The HTTP server, auth and the basic endpoints, through the real binary."""
import base64
import hashlib
import hmac
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, SECRET, read_response


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(claims, secret=SECRET, header=None):
    h = b64(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    p = b64(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), f"{h}.{p}".encode(), hashlib.sha256).digest()
    return f"{h}.{p}.{b64(sig)}"


def test_health_needs_no_token(agent):
    r = agent.get("/health", token=False)
    assert r.status == 200
    body = r.json()
    assert body["status"] == "ok" and body["agent"] == "sandbox-agent"
    assert isinstance(body["uptime_seconds"], int) and "version" in body
    assert r.header("content-type") == "application/json; charset=utf-8"
    assert r.header("x-request-id")


def test_info_with_token(agent):
    r = agent.get("/info")
    assert r.status == 200, r
    info = r.json()
    for key in ("version", "build", "os", "arch", "pid", "listen", "start_time", "uptime_seconds",
                "limits", "endpoints"):
        assert key in info, key
    assert info["listen"] == agent.addr
    assert info["pid"] == agent.proc.pid
    assert "GET /health" in info["endpoints"]
    assert info["start_time"].endswith("Z") and len(info["start_time"]) == 24


# built when the test runs, not at import: a slow suite must not expire them first
BAD_AUTH = {
    "missing": lambda: None,
    "not bearer": lambda: "Basic dXNlcjpwYXNz",
    "garbage": lambda: "Bearer abc.def.ghi",
    "forged": lambda: "Bearer " + make_token({"exp": int(time.time()) + 600}, secret="wrong"),
    "alg none": lambda: "Bearer " + b64(b'{"alg":"none","typ":"JWT"}') + "." +
    b64(json.dumps({"exp": int(time.time()) + 600}).encode()) + ".",
    "alg HS512": lambda: "Bearer " + make_token({"exp": int(time.time()) + 600}, header={"alg": "HS512"}),
    "no exp": lambda: "Bearer " + make_token({"sub": "x"}),
    "nbf future": lambda: "Bearer " + make_token({"exp": int(time.time()) + 600, "nbf": int(time.time()) + 600}),
}


@pytest.mark.parametrize("why", sorted(BAD_AUTH))
def test_info_rejects_bad_tokens(agent, why):
    auth = BAD_AUTH[why]()
    headers = {"Authorization": auth} if auth else {}
    r = agent.request("GET", "/info", token=False, headers=headers)
    assert r.status == 401, why
    body = r.json()
    assert body["code"] == "UNAUTHORIZED" and body["error"] and body["request_id"]
    assert r.header("www-authenticate") == "Bearer"


def test_expired_token_says_so(agent):
    tok = make_token({"exp": int(time.time()) - 120})
    r = agent.get("/info", token=tok)
    assert r.status == 401
    assert r.json()["code"] == "TOKEN_EXPIRED"
    assert "token expired" in r.json()["error"]


def test_token_within_leeway_is_accepted(agent):
    assert agent.get("/info", token=make_token({"exp": int(time.time()) - 30})).status == 200


def test_token_from_cli_works_and_python_token_too(agent):
    assert agent.get("/info", token=make_token({"exp": int(time.time()) + 60})).status == 200


def test_unknown_path_is_404_json(agent):
    r = agent.get("/nope")
    assert r.status == 404 and r.json()["code"] == "NOT_FOUND"


def test_wrong_method_is_405_with_allow(agent):
    r = agent.request("DELETE", "/health")
    assert r.status == 405
    assert r.json()["code"] == "METHOD_NOT_ALLOWED"
    assert "GET" in r.header("allow")


def test_head_has_no_body(agent):
    with agent.connect() as s:
        s.sendall(b"HEAD /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        r1 = read_response(s, head_only=True)
        assert r1.status == 200 and int(r1.header("content-length")) > 0
        r2 = read_response(s)
        assert r2.status == 200 and r2.json()["status"] == "ok"


def test_request_id_echoed_or_generated(agent):
    r = agent.get("/health", headers={"X-Request-ID": "abc-123"})
    assert r.header("x-request-id") == "abc-123"
    r2 = agent.get("/nope", headers={"X-Request-ID": "bad id with spaces"})
    assert r2.header("x-request-id") != "bad id with spaces"
    assert r2.json()["request_id"] == r2.header("x-request-id")


def test_keep_alive_and_pipelining_in_order(agent):
    with agent.connect() as s:
        reqs = b"".join(
            f"GET /health HTTP/1.1\r\nHost: x\r\nX-Request-ID: r{i}\r\n\r\n".encode() for i in range(20))
        s.sendall(reqs)
        for i in range(20):
            r = read_response(s)
            assert r.status == 200 and r.header("x-request-id") == f"r{i}"


def test_connection_close_is_honoured(agent):
    out = agent.raw(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200") and b"Connection: close" in out


def test_http10_closes_unless_keep_alive(agent):
    out = agent.raw(b"GET /health HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200")
    with agent.connect() as s:
        s.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        r = read_response(s)
        assert r.status == 200 and r.header("connection") == "keep-alive"
        s.sendall(b"GET /health HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        assert read_response(s).status == 200


@pytest.mark.parametrize("raw,status", [
    (b"GET /health HTTP/1.1\r\n\r\n", 400),                                   # no Host
    (b"GET /health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),            # two Hosts
    (b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    (b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400),
    (b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    (b"POST /health HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    (b"GET /health HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505),
    (b"\x00\x01\x02garbage\r\n\r\n", 400),
    (b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 10737418240\r\n\r\n", 413),
    (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    (b"GET /health HTTP/1.1\r\nHost: a\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(100)) + b"\r\n", 431),
    (b"GET /health HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 20000 + b"\r\n\r\n", 431),
])
def test_malformed_requests_get_json_errors(agent, raw, status):
    out = agent.raw(raw)
    assert out.startswith(b"HTTP/1.1 %d " % status), out[:200]
    body = out.split(b"\r\n\r\n", 1)[1]
    err = json.loads(body)
    assert err["code"] and err["error"] and err["request_id"]
    assert b"Connection: close" in out
    assert agent.alive()


def test_chunked_body_is_decoded_and_next_request_follows(agent):
    with agent.connect() as s:
        s.sendall(b"POST /health HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"4\r\nabcd\r\n3;ext=1\r\nefg\r\n0\r\nTrailer: x\r\n\r\n"
                  b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s).status == 405   # POST on a GET route, body consumed
        assert read_response(s).status == 200


def test_bad_chunk_is_400(agent):
    out = agent.raw(b"POST /health HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n")
    assert out.startswith(b"HTTP/1.1 400")


def test_expect_100_continue(agent):
    with agent.connect() as s:
        s.sendall(b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        r = read_response(s)
        assert r.status == 100
        s.sendall(b"hello")
        assert read_response(s).status == 405


def test_body_in_pieces(agent):
    with agent.connect() as s:
        s.sendall(b"POST /health HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
        time.sleep(0.05)
        s.sendall(b"cdefghij")
        assert read_response(s).status == 405
        s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n\r\n")
        assert read_response(s).status == 200


def test_half_open_connections_do_not_stall_others(agent):
    idle = []
    try:
        for i in range(300):
            s = agent.connect()
            if i % 2:
                s.sendall(b"GET /health HTTP/1.1\r\nHost: a\r\n")   # never finished
            idle.append(s)
        t0 = time.monotonic()
        for _ in range(20):
            assert agent.get("/health", token=False).status == 200
        assert time.monotonic() - t0 < 5
    finally:
        for s in idle:
            s.close()


def test_percent_encoded_path_is_not_a_route(agent):
    assert agent.get("/%68ealth", token=False).status == 404


# ---- command line ----

def run_cli(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("SANDBOX_AGENT_")}
    e.update(env or {})
    return subprocess.run([BIN, *args], capture_output=True, env=e, timeout=10)


def test_version_and_help():
    assert run_cli("--version").stdout.startswith(b"sandbox-agent ")
    h = run_cli("--help").stdout
    for flag in (b"--listen", b"--workdir", b"--jwt-secret-file", b"--no-auth"):
        assert flag in h


def test_refuses_to_start_without_secret(tmp_path):
    r = run_cli("--listen", "127.0.0.1:0", "--workdir", str(tmp_path))
    assert r.returncode != 0 and b"secret" in r.stderr


def test_no_auth_only_on_loopback(tmp_path):
    r = run_cli("--listen", "0.0.0.0:0", "--no-auth", "--workdir", str(tmp_path))
    assert r.returncode != 0 and b"loopback" in r.stderr


def test_unknown_flag_fails(tmp_path):
    r = run_cli("--frobnicate")
    assert r.returncode == 2 and b"unknown flag" in r.stderr


def test_no_auth_serves_without_token(start_agent):
    a = start_agent("--no-auth", secret=None)
    assert a.get("/info", token=False).status == 200


def test_secret_file_with_trailing_newline(start_agent, tmp_path):
    f = tmp_path / "secret"
    f.write_text("file-secret\n")
    a = start_agent("--jwt-secret-file", str(f), secret=None)
    assert a.get("/info", token=make_token({"exp": int(time.time()) + 60}, secret="file-secret")).status == 200
    assert a.get("/info", token=make_token({"exp": int(time.time()) + 60}, secret="file-secret\n")).status == 401
    tok = subprocess.check_output([BIN, "token", "--secret-file", str(f)]).decode().strip()
    assert a.get("/info", token=tok).status == 200


def test_audience_and_subject_binding(start_agent):
    a = start_agent("--jwt-audience", "fleet", "--jwt-subject", "svc")
    exp = int(time.time()) + 60
    assert a.get("/info", token=make_token({"exp": exp, "aud": "fleet", "sub": "svc"})).status == 200
    assert a.get("/info", token=make_token({"exp": exp, "aud": ["x", "fleet"], "sub": "svc"})).status == 200
    assert a.get("/info", token=make_token({"exp": exp, "aud": "other", "sub": "svc"})).status == 401
    assert a.get("/info", token=make_token({"exp": exp, "aud": "fleet", "sub": "else"})).status == 401
    assert a.get("/info", token=a.token(aud="fleet", sub="svc")).status == 200


def test_env_flags(start_agent):
    a = start_agent(env={"SANDBOX_AGENT_MAX_RUNNING": "7", "SANDBOX_AGENT_OUTPUT_LIMIT": "64k"})
    lim = a.get("/info").json()["limits"]
    assert lim["max_running"] == 7 and lim["output_limit_bytes"] == 65536


def test_sigterm_exits_zero(start_agent):
    a = start_agent()
    assert a.alive()
    a.proc.terminate()
    assert a.proc.wait(10) == 0


def test_log_line_per_request(start_agent):
    a = start_agent()
    a.get("/health", token=False, headers={"X-Request-ID": "logme"})
    a.get("/info", token="bogus")
    a.stop()
    log = a.log()
    line = [l for l in log.splitlines() if "id=logme" in l][0]
    for field in ("method=GET", "path=/health", "status=200", "bytes=", "us="):
        assert field in line
    assert "bogus" not in log and SECRET not in log
