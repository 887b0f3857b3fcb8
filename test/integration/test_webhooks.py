"""Webhooks (issue 16): POST /execute/async and callbacks on the background routes, delivered
by the real binary to real receivers on loopback: plain HTTP with a signature check, retries,
timeouts, TLS with a CA made by openssl at test time (by IP and by a name from /etc/hosts), a
certificate for another host, a receiver on 127.0.0.2, names through a nameserver of our own.
Every wait polls for a state with a deadline; short backoff and timeouts come from the
agent's --hook-backoff-ms and --hook-timeout-ms flags."""
import json
import os
import shutil
import signal
import socket
import struct
import threading
import time

import pytest

from conftest import Agent, get
from hooks_util import CA, Receiver, signature

FAST = ("--no-auth", "--hook-backoff-ms", "50")
PAYLOAD_KEYS = {"execution_id", "process_id", "status", "success", "exit_code", "reason",
                "stdout", "stderr", "stdout_truncated", "stderr_truncated", "execution_time",
                "started_at", "completed_at"}


def settled(agent, pid, timeout=30, attempts=None):
    """Polls the record until its callback leaves pending (or reaches `attempts`)."""
    deadline = time.monotonic() + timeout
    while True:
        rec = get(agent, pid)
        cb = rec.get("callback")
        assert cb is not None, rec
        if cb["state"] != "pending" or (attempts and cb["attempts"] >= attempts):
            return rec
        assert time.monotonic() < deadline, f"callback still pending after {timeout}s: {cb}"
        time.sleep(0.05)


@pytest.fixture
def receivers():
    made = []

    def make(*a, **kw):
        r = Receiver(*a, **kw)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


@pytest.fixture(scope="module")
def ca(tmp_path_factory):
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    return CA(tmp_path_factory.mktemp("ca"))


def test_async_signed_delivery(start_agent, receivers):
    rx = receivers()
    a = start_agent(*FAST)
    secret = "s3cr\u00e9t-key"
    r = a.post("/execute/async", {"code": "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
                                  "language": "python", "callback_url": rx.url(),
                                  "callback_signature_secret": secret,
                                  "callback_headers": {"X-Trace": "abc 123", "Authorization": "Bearer t"}})
    assert r.status == 200, r
    started = r.json()
    assert started["callback_url"] == rx.url()
    assert set(started) >= {"execution_id", "process_id", "status"}
    headers, body, _ = rx.wait(1)[0]
    assert headers["_request_line"] == "POST /hook HTTP/1.1"
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"].startswith("sandbox-agent/")
    assert headers["x-trace"] == "abc 123" and headers["authorization"] == "Bearer t"
    assert headers["host"] == f"127.0.0.1:{rx.port}"
    ts = headers["x-hopx-timestamp"]
    assert ts.isdigit() and abs(int(ts) - time.time()) < 60
    # the signature covers the timestamp followed directly by the raw body bytes
    assert headers["x-hopx-signature"] == signature(secret, ts, body)
    assert headers["x-hopx-signature"] != signature(secret + "x", ts, body)
    p = json.loads(body)
    assert set(p) == PAYLOAD_KEYS
    assert p["process_id"] == started["process_id"] and p["execution_id"] == started["execution_id"]
    assert p["status"] == "failed" and p["exit_code"] == 3 and p["success"] is False
    assert p["reason"] == "exit" and p["stdout"] == "out\n" and p["stderr"] == "err\n"
    rec = settled(a, started["process_id"])
    cb = rec["callback"]
    assert cb["state"] == "delivered" and cb["attempts"] == 1 and cb["last_status"] == 200
    assert cb["last_error"] is None and cb["delivered_at"].endswith("Z")
    assert cb["url"] == rx.url()


def test_background_routes_take_callbacks_unsigned(start_agent, receivers):
    rx = receivers(chunked=True)   # a chunked answer is drained too
    a = start_agent(*FAST)
    pids = [a.post("/commands/background", {"command": "echo cmd", "callback_url": rx.url()}).json()["process_id"],
            a.post("/execute/background", {"code": "echo code", "language": "bash",
                                           "callback_url": rx.url()}).json()["process_id"]]
    pids.append(a.post("/commands/background", {"command": "echo empty", "callback_url": rx.url(),
                                                "callback_signature_secret": ""}).json()["process_id"])
    got = rx.wait(3)
    assert all("x-hopx-signature" not in h for h, _, _ in got)   # "" is no secret
    assert sorted(json.loads(b)["stdout"] for _, b, _ in got) == ["cmd\n", "code\n", "empty\n"]
    for pid in pids:
        assert settled(a, pid)["callback"]["state"] == "delivered"
    # no callback: no callback member
    pid = a.post("/commands/background", {"command": "true"}).json()["process_id"]
    assert "callback" not in get(a, pid)


def test_retried_after_503_twice(start_agent, receivers):
    rx = receivers(statuses=(503, 503, 200))
    a = start_agent(*FAST)
    pid = a.post("/commands/background", {"command": "echo x", "callback_url": rx.url(),
                                          "callback_signature_secret": "k"}).json()["process_id"]
    cb = settled(a, pid)["callback"]
    assert cb["state"] == "delivered" and cb["attempts"] == 3 and cb["last_status"] == 200
    got = rx.wait(3)
    # every attempt is signed afresh, and the body is the same record
    assert all(h["x-hopx-signature"] == signature("k", h["x-hopx-timestamp"], b) for h, b, _ in got)
    assert len({b for _, b, _ in got}) == 1
    # backoff: the gaps grow (50 ms, then 100 ms at least)
    t = [x for _, _, x in got]
    assert t[1] - t[0] >= 0.04 and t[2] - t[1] >= 0.09


def test_client_error_fails_at_once(start_agent, receivers):
    rx = receivers(statuses=(404,))
    a = start_agent(*FAST)
    pid = a.post("/commands/background", {"command": "true", "callback_url": rx.url()}).json()["process_id"]
    cb = settled(a, pid)["callback"]
    assert cb["state"] == "failed" and cb["attempts"] == 1 and cb["last_status"] == 404
    assert "404" in cb["last_error"] and cb["delivered_at"] is None
    deadline = time.monotonic() + 10   # the log says so too
    while f"event=webhook process_id={pid} state=failed attempts=1 status=404" not in a.log():
        assert time.monotonic() < deadline, a.log()[-2000:]
        time.sleep(0.05)


def test_gives_up_after_eight_attempts(start_agent, receivers):
    rx = receivers(statuses=(500,))
    a = start_agent("--no-auth", "--hook-backoff-ms", "5")
    pid = a.post("/commands/background", {"command": "true", "callback_url": rx.url()}).json()["process_id"]
    cb = settled(a, pid, timeout=60)["callback"]
    assert cb["state"] == "failed" and cb["attempts"] == 8 and cb["last_status"] == 500
    assert len(rx.requests) == 8


def test_receiver_that_never_answers_times_out(start_agent, receivers):
    rx = receivers(hang=True)
    a = start_agent(*FAST, "--hook-timeout-ms", "500")
    pid = a.post("/commands/background", {"command": "true", "callback_url": rx.url()}).json()["process_id"]
    cb = settled(a, pid, attempts=2)["callback"]
    assert cb["state"] == "pending" and cb["last_status"] is None
    assert "timed out" in cb["last_error"]
    assert a.get("/health", token=False).status == 200   # the loop never waited on it


def test_connection_refused_is_retried(start_agent):
    with socket.socket() as s:   # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    a = start_agent(*FAST)
    pid = a.post("/commands/background", {"command": "true",
                                          "callback_url": f"http://127.0.0.1:{port}/x"}).json()["process_id"]
    cb = settled(a, pid, attempts=2)["callback"]
    assert "connect" in cb["last_error"] and "refused" in cb["last_error"].lower()


def test_receiver_on_127_0_0_2(start_agent, receivers):
    try:
        rx = receivers(host="127.0.0.2")
    except OSError:
        pytest.skip("127.0.0.2 is not usable here")
    a = start_agent(*FAST)
    pid = a.post("/commands/background", {"command": "echo two", "callback_url": rx.url()}).json()["process_id"]
    headers, body, _ = rx.wait(1)[0]
    assert headers["host"] == f"127.0.0.2:{rx.port}" and json.loads(body)["stdout"] == "two\n"
    assert settled(a, pid)["callback"]["state"] == "delivered"


def test_tls_by_ip_and_by_name(start_agent, receivers, ca):
    rsa = receivers(tls=ca.server("rsa", "DNS:localhost,IP:127.0.0.1", ec=False))
    ec = receivers(tls=ca.server("ec", "DNS:localhost,IP:127.0.0.1", ec=True))
    a = start_agent(*FAST, "--ca-file", ca.pem)
    urls = [rsa.url(), rsa.url("localhost"), ec.url(), ec.url("localhost")]
    pids = [a.post("/commands/background", {"command": f"echo {i}", "callback_url": u,
                                            "callback_signature_secret": "tls"}).json()["process_id"]
            for i, u in enumerate(urls)]
    for pid in pids:
        cb = settled(a, pid)["callback"]
        assert cb["state"] == "delivered" and cb["attempts"] == 1, cb
    got = rsa.wait(2) + ec.wait(2)
    info = a.get("/info").json()["webhooks"]
    assert info["https"] is True and info["trust_anchors"] == 1 and info["delivered"] == 4
    assert all(h["x-hopx-signature"] == signature("tls", h["x-hopx-timestamp"], b) for h, b, _ in got)
    assert {h["host"].split(":")[0] for h, _, _ in got} == {"127.0.0.1", "localhost"}


def test_tls_certificate_for_another_host_refused(start_agent, receivers, ca):
    other = receivers(tls=ca.server("other", "DNS:other.example,IP:10.9.8.7", ec=True))
    a = start_agent(*FAST, "--ca-file", ca.pem)
    for url in (other.url(), other.url("localhost")):
        pid = a.post("/commands/background", {"command": "true", "callback_url": url}).json()["process_id"]
        cb = settled(a, pid, attempts=2)["callback"]
        assert cb["state"] == "pending" and "does not match the host name" in cb["last_error"], cb
    assert other.requests == []   # nothing was ever sent over those connections


def test_tls_unknown_ca_refused(start_agent, receivers, ca, tmp_path):
    other_ca = CA(tmp_path / "other")
    rx = receivers(tls=other_ca.server("x", "IP:127.0.0.1"))
    a = start_agent(*FAST, "--ca-file", ca.pem)
    pid = a.post("/commands/background", {"command": "true", "callback_url": rx.url()}).json()["process_id"]
    cb = settled(a, pid, attempts=2)["callback"]
    assert "not trusted" in cb["last_error"], cb
    assert rx.requests == []


def test_https_refused_without_bundle(start_agent, receivers, tmp_path):
    empty = tmp_path / "empty.pem"
    empty.write_text("no certificates here\n")
    a = start_agent("--no-auth", "--ca-file", str(empty))
    assert a.get("/info").json()["webhooks"]["https"] is False
    before = a.get("/execute/processes").json()["count"]
    r = a.post("/execute/async", {"code": "print(1)", "callback_url": "https://127.0.0.1:1/x"})
    assert r.status == 400 and r.json()["code"] == "INVALID_REQUEST"
    assert "https" in r.json()["message"] and "ca-file" in r.json()["message"]
    assert a.get("/execute/processes").json()["count"] == before   # nothing started
    rx = receivers()   # plain http still works
    pid = a.post("/commands/background", {"command": "true", "callback_url": rx.url()}).json()["process_id"]
    assert settled(a, pid)["callback"]["state"] == "delivered"


@pytest.mark.parametrize("body,code,words", [
    ({"code": "print(1)"}, "MISSING_PARAMETER", "callback_url"),
    ({"code": "print(1)", "callback_url": "ftp://h/x"}, "INVALID_REQUEST", "http"),
    ({"code": "print(1)", "callback_url": "http://user:pw@h/x"}, "INVALID_REQUEST", "user"),
    ({"code": "print(1)", "callback_url": "http://h:99999/x"}, "INVALID_REQUEST", "port"),
    ({"code": "print(1)", "callback_url": "http:///x"}, "INVALID_REQUEST", "host"),
    ({"code": "print(1)", "callback_url": "http://h/x y"}, "INVALID_REQUEST", "callback_url"),
    ({"code": "print(1)", "callback_url": "http://h/x", "callback_headers": {"X-A": "a\r\nB: c"}},
     "INVALID_REQUEST", "CR, LF"),
    ({"code": "print(1)", "callback_url": "http://h/x", "callback_headers": {"X-A": "a\x01"}},
     "INVALID_REQUEST", "control characters"),
    ({"code": "print(1)", "callback_url": "http://h/x", "callback_headers": {"Host": "evil"}},
     "INVALID_REQUEST", "cannot be overridden"),
    ({"code": "print(1)", "callback_url": "http://h/x",
      "callback_headers": {"X-HopX-Signature": "sha256=0"}}, "INVALID_REQUEST", "cannot be overridden"),
    ({"code": "print(1)", "callback_url": "http://h/x", "callback_headers": {"Bad Name": "v"}},
     "INVALID_REQUEST", "header name"),
    ({"code": "print(1)", "callback_url": "http://h/x", "callback_headers": ["x"]},
     "INVALID_REQUEST", "callback_headers"),
    ({"code": "print(1)", "callback_url": 5}, "INVALID_REQUEST", "callback_url"),
])
def test_bad_callback_requests(start_agent, body, code, words):
    a = start_agent("--no-auth")
    r = a.post("/execute/async", body)
    assert r.status == 400, r
    assert r.json()["code"] == code and words in r.json()["message"], r.json()
    assert a.get("/execute/processes").json()["count"] == 0   # nothing started


def test_not_evicted_or_forgotten_while_pending(start_agent, receivers):
    rx = receivers(hang=True)
    a = start_agent("--no-auth", "--max-records", "2", "--hook-timeout-ms", "60000")
    pid = a.post("/commands/background", {"command": "true", "callback_url": rx.url()}).json()["process_id"]
    rx.wait(1)
    for _ in range(4):   # more records than --max-records: older finished ones go, not ours
        p2 = a.post("/commands/background", {"command": "true"}).json()["process_id"]
        deadline = time.monotonic() + 10
        while get(a, p2)["status"] not in ("completed", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert get(a, pid)["callback"]["state"] == "pending"
    r = a.request("DELETE", f"/execute/processes/{pid}")
    assert r.status == 409 and "webhook" in r.json()["message"]


def test_shutdown_delivers_within_grace(start_agent, receivers):
    rx = receivers()
    a = start_agent("--no-auth", "--grace", "3")
    pid = a.post("/commands/background", {"command": "sleep 600", "callback_url": rx.url()}).json()["process_id"]
    deadline = time.monotonic() + 10
    while get(a, pid)["status"] != "running":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    a.proc.send_signal(signal.SIGTERM)
    assert a.proc.wait(20) == 0
    headers, body, _ = rx.wait(1, timeout=5)[0]
    p = json.loads(body)
    assert p["process_id"] == pid and p["status"] == "failed" and p["reason"] in ("killed", "signal")


# ---- names through a nameserver of our own (resolv.conf) ----

class FakeDNS:
    """A UDP nameserver: answers A queries from `names` (a CNAME first for aliases),
    NXDOMAIN for the rest, nothing for AAAA of unknown names."""

    def __init__(self, names, aliases=None, v6=None):
        self.names, self.aliases, self.v6 = names, aliases or {}, v6 or {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = []
        threading.Thread(target=self._serve, daemon=True).start()

    @staticmethod
    def _name(s):
        return b"".join(bytes([len(l)]) + l.encode() for l in s.split(".")) + b"\0"

    def _serve(self):
        while True:
            try:
                q, addr = self.sock.recvfrom(512)
            except OSError:
                return
            qid, = struct.unpack(">H", q[:2])
            i, labels = 12, []
            while q[i]:
                labels.append(q[i + 1:i + 1 + q[i]].decode())
                i += 1 + q[i]
            qname = ".".join(labels).lower()
            qtype, = struct.unpack(">H", q[i + 1:i + 3])
            question = q[12:i + 5]
            self.queries.append((qname, qtype))
            answers, target = [], qname
            if qname in self.aliases:
                target = self.aliases[qname]
                rd = self._name(target)
                answers.append(b"\xc0\x0c" + struct.pack(">HHIH", 5, 1, 60, len(rd)) + rd)
            rcode = 0
            owner = self._name(target) if answers else b"\xc0\x0c"
            if target in self.names and qtype == 1:
                rd = socket.inet_aton(self.names[target])
                answers.append(owner + struct.pack(">HHIH", 1, 1, 60, 4) + rd)
            elif target in self.v6 and qtype == 28:
                rd = socket.inet_pton(socket.AF_INET6, self.v6[target])
                answers.append(owner + struct.pack(">HHIH", 28, 1, 60, 16) + rd)
            elif target not in self.names and target not in self.v6:
                rcode = 3
            hdr = struct.pack(">HHHHHH", qid, 0x8180 | rcode, 1, len(answers), 0, 0)
            try:
                self.sock.sendto(hdr + question + b"".join(answers), addr)
            except OSError:
                return

    def close(self):
        self.sock.close()


def test_ipv6_only_name_through_aaaa(start_agent, receivers, tmp_path):
    try:
        rx = receivers(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    dns = FakeDNS({}, v6={"six.example.test": "::1"})
    conf = tmp_path / "resolv.conf"
    conf.write_text(f"nameserver 127.0.0.1:{dns.port}\n")
    try:
        a = start_agent(*FAST, "--resolv-conf", str(conf), "--hosts-file", os.devnull)
        pid = a.post("/commands/background", {"command": "true",
                                              "callback_url": rx.url("six.example.test")}).json()["process_id"]
        assert settled(a, pid)["callback"]["state"] == "delivered"
        assert dns.queries[:2] == [("six.example.test", 1), ("six.example.test", 28)]   # A, then AAAA
    finally:
        dns.close()


def test_names_through_dns(start_agent, receivers, tmp_path):
    rx = receivers()
    dns = FakeDNS({"hooks.example.test": "127.0.0.1"}, aliases={"alias.example.test": "hooks.example.test"})
    conf = tmp_path / "resolv.conf"
    # the first server answers nothing (a closed port): the resolver moves to the next
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    conf.write_text(f"# test\nnameserver 127.0.0.1:{dead}\nnameserver 127.0.0.1:{dns.port}\n")
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n")
    try:
        a = start_agent(*FAST, "--resolv-conf", str(conf), "--hosts-file", str(hosts))
        pids = [a.post("/commands/background", {"command": "true",
                                                "callback_url": rx.url(h)}).json()["process_id"]
                for h in ("hooks.example.test", "alias.example.test")]
        for pid in pids:
            assert settled(a, pid)["callback"]["state"] == "delivered"
        assert {h["host"].split(":")[0] for h, _, _ in rx.wait(2)} == {"hooks.example.test",
                                                                         "alias.example.test"}
        pid = a.post("/commands/background", {"command": "true",
                                              "callback_url": "http://nope.example.test/x"}).json()["process_id"]
        cb = settled(a, pid, attempts=1)["callback"]
        deadline = time.monotonic() + 10
        while not cb["last_error"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
            cb = get(a, pid)["callback"]
        assert "no such host" in cb["last_error"], cb
        assert ("hooks.example.test", 1) in dns.queries
    finally:
        dns.close()


def test_readme_verification_snippet(start_agent, receivers):
    """The README's Python snippet, run as written, accepts what the agent sends and
    refuses a changed body or timestamp."""
    readme = os.path.join(os.path.dirname(__file__), "../../README.md")
    with open(readme) as f:
        text = f.read()
    section = text[text.index("## Webhooks"):]
    code = section[section.index("```python\n") + 10:]
    code = code[:code.index("```")]
    ns = {}
    exec(code, ns)
    verify = ns["verify"]
    rx = receivers()
    a = start_agent(*FAST)
    a.post("/execute/async", {"code": "print('\u00e9\\x01')", "callback_url": rx.url(),
                              "callback_signature_secret": "whsec_test"})
    headers, body, _ = rx.wait(1)[0]
    ts, sig = headers["x-hopx-timestamp"], headers["x-hopx-signature"]
    assert verify(b"whsec_test", ts, sig, body)
    assert not verify(b"whsec_test", ts, sig, body + b" ")
    assert not verify(b"whsec_test", str(int(ts) + 1), sig, body)
    assert not verify(b"other", ts, sig, body)


class RawServer:
    """Answers every connection with the same raw bytes after reading the request."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.count = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(10)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        data += c.recv(65536)
                    head, body = data.split(b"\r\n\r\n", 1)
                    n = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    while len(body) < n:
                        body += c.recv(65536)
                    self.count += 1
                    c.sendall(self.answer)
                except OSError:
                    pass

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


@pytest.mark.parametrize("answer,state,status", [
    (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 70000\r\n\r\n"
     + b"x" * 70000, "delivered", 202),
    (b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nbody until the close", "delivered", 200),
    (b"HTTP/1.1 204 No Content\r\n\r\n", "delivered", 204),
    (b"HTTP/1.1 301 Moved\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n", "failed", 301),
    (b"SSH-2.0-OpenSSH_9.2\r\n", "pending", None),
])
def test_response_shapes(start_agent, answer, state, status):
    srv = RawServer(answer)
    try:
        a = start_agent(*FAST, "--hook-backoff-ms", "2000")
        pid = a.post("/commands/background", {"command": "true",
                                              "callback_url": f"http://127.0.0.1:{srv.port}/"}).json()["process_id"]
        deadline = time.monotonic() + 20
        while True:
            cb = get(a, pid)["callback"]
            if cb["attempts"] >= 1 and (cb["state"] != "pending" or cb["last_error"]):
                break
            assert time.monotonic() < deadline, cb
            time.sleep(0.05)
        assert cb["state"] == state and cb["last_status"] == status, cb
        if status is None:
            assert "malformed" in cb["last_error"]
    finally:
        srv.close()


def test_at_most_16_deliveries_at_once(start_agent, receivers):
    rx = receivers(hang=True)   # holds every connection: slots stay busy until the timeout
    a = start_agent(*FAST, "--hook-timeout-ms", "20000")
    pids = [a.post("/commands/background", {"command": "true", "callback_url": rx.url()}).json()["process_id"]
            for _ in range(20)]
    rx.wait(16)
    deadline = time.monotonic() + 10
    while True:   # all 20 finished: 16 running, 4 waiting for a slot
        info = a.get("/info").json()["webhooks"]
        if info["pending"] == 20:
            break
        assert time.monotonic() < deadline, info
        time.sleep(0.05)
    assert info["active"] == 16
    assert len(rx.requests) == 16   # the 17th cannot start before a slot frees (20 s)
    states = {get(a, p)["callback"]["attempts"] for p in pids}
    assert states == {0, 1}


def test_ipv6_literal_url(start_agent, receivers):
    try:
        rx = receivers(host="::1")
    except OSError:
        pytest.skip("no IPv6 loopback here")
    a = start_agent(*FAST)
    pid = a.post("/commands/background", {"command": "true", "callback_url": rx.url()}).json()["process_id"]
    headers, _, _ = rx.wait(1)[0]
    assert headers["host"] == f"[::1]:{rx.port}"
    assert settled(a, pid)["callback"]["state"] == "delivered"


def test_bundle_with_nothing_usable_fails_the_delivery(start_agent, tmp_path, receivers):
    bad = tmp_path / "bad.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n")
    a = start_agent(*FAST, "--ca-file", str(bad))
    rx = receivers()
    pid = a.post("/commands/background", {"command": "true",
                                          "callback_url": f"https://127.0.0.1:{rx.port}/"}).json()["process_id"]
    cb = settled(a, pid)["callback"]
    assert cb["state"] == "failed" and "no usable certificate" in cb["last_error"], cb
    assert a.get("/info").json()["webhooks"]["https"] is False   # known now
