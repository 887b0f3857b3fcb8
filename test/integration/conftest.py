"""Integration fixtures: start the real static binary on a free loopback port and talk to it
over real sockets, as curl would."""
import json
import os
import socket
import subprocess
import time

import pytest

BIN = os.environ.get("AGENT_BIN") or os.path.join(os.path.dirname(__file__), "../../build/sandbox-agent")
SHARED = os.environ.get("SHARED_TESTDATA")
# AGENT_SANITIZED=1: BIN is the ASan+UBSan build (scripts/test.sh runs the suite twice).
# Tests marked @pytest.mark.once (slow ones: gigabytes of output, the corpus) then skip,
# and every agent's log is checked for sanitizer reports.
SANITIZED = os.environ.get("AGENT_SANITIZED") == "1"
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
SECRET = "integration-test-secret-0123456789abcdef"


# ---- helpers the process tests share ----

TERMINAL = ("completed", "failed")


def start(agent, body, path="/commands/background"):
    r = agent.post(path, body)
    assert r.status == 200, r
    return r.json()


def get(agent, pid):
    r = agent.get(f"/execute/processes/{pid}")
    assert r.status == 200, r
    return r.json()


def wait_done(agent, pid, timeout=30):
    """The client loop from the docs: poll until completed or failed. Bounded."""
    deadline = time.monotonic() + timeout
    while True:
        rec = get(agent, pid)
        if rec["status"] in TERMINAL:
            return rec
        assert time.monotonic() < deadline, f"{pid} not finished after {timeout}s: {rec}"
        time.sleep(0.05)


def wait_until(pred, what, timeout=60, step=0.05):
    """Polls pred() until it returns something truthy (returned); fails naming `what` after
    a generous deadline. For states the test does not control (an exec, a reap, a log line):
    never sleep a fixed time and hope."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        assert time.monotonic() < deadline, f"not after {timeout}s: {what}"
        time.sleep(step)


def agent_unread(sock):
    """Bytes sent on this client socket that the agent has not read yet: the receive queue
    of its end of the connection (/proc/net/tcp, IPv4 loopback). 0 once it took them all;
    None when the connection is not listed (closed)."""
    mine, peer = sock.getsockname()[1], sock.getpeername()[1]
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
            if local == peer and remote == mine:
                return int(fields[4].split(":")[1], 16)
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Response:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body

    def json(self):
        return json.loads(self.body)

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return f"<{self.status} {self.body[:200]!r}>"


_pending = {}   # bytes read past one response, per socket, for the next read_response


def read_response(sock, head_only=False):
    """Reads one HTTP/1.1 response (Content-Length framed). None when the peer closed first.
    Bytes past it (a pipelined answer) are kept for the next call on the same socket."""
    data = _pending.pop(sock.fileno(), b"")
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None if not data else Response(0, {}, data)
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        k, v = line.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    n = 0 if head_only or status == 100 else int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    if rest[n:]:
        _pending[sock.fileno()] = rest[n:]
    return Response(status, headers, rest[:n])


class Agent:
    started = []   # every agent of the current test, for the sanitizer check

    def __init__(self, *flags, env=None, secret=SECRET, workdir=None, tmp=None, bin=None, prefix=()):
        """bin: another build of the agent; prefix: a wrapper command (prlimit, valgrind)."""
        self.secret = secret
        self.tmp = tmp
        Agent.started.append(self)
        e = dict(os.environ)
        e.pop("SANDBOX_AGENT_JWT_SECRET", None)
        if secret is not None:
            e["SANDBOX_AGENT_JWT_SECRET"] = secret
        e.update(env or {})
        self.workdir = workdir or str(tmp)
        args = [*prefix, bin or BIN, "--listen", "127.0.0.1:0", "--workdir", self.workdir, *flags]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=open(os.path.join(str(tmp), "agent.log"), "ab"), env=e)
        line = self.proc.stdout.readline().decode()
        assert line.startswith("listening on "), f"agent did not start: {line!r}"
        self.addr = line.split()[-1]
        self.port = int(self.addr.rsplit(":", 1)[1])
        self._token = None

    def token(self, ttl=600, **claims):
        env = dict(os.environ, SANDBOX_AGENT_JWT_SECRET=self.secret)
        if not claims and ttl == 600 and self._token:
            return self._token
        args = [BIN, "token", "--ttl", str(ttl)]
        for k in ("sub", "aud"):
            if k in claims:
                args += [f"--{k}", claims[k]]
        t = subprocess.check_output(args, env=env).decode().strip()
        if not claims and ttl == 600:
            self._token = t
        return t

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.settimeout(timeout)
        _pending.pop(s.fileno(), None)
        return s

    def request(self, method, path, body=None, headers=None, token=True, raw_body=None, timeout=30):
        h = {"Host": "localhost"}
        if token is True:
            h["Authorization"] = "Bearer " + self.token()
        elif token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            raw_body = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        if raw_body is not None:
            h["Content-Length"] = str(len(raw_body))
        h.update(headers or {})
        req = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        with self.connect(timeout) as s:
            s.sendall(req.encode() + (raw_body or b""))
            return read_response(s, head_only=(method == "HEAD"))

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, body=body, **kw)

    def raw(self, data, timeout=3, close_write=False):
        """Sends raw bytes; returns every byte received until the peer closes or timeout."""
        with self.connect(timeout) as s:
            s.sendall(data)
            if close_write:
                s.shutdown(socket.SHUT_WR)
            out = b""
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
            except (socket.timeout, ConnectionResetError):
                pass
            return out

    def alive(self):
        return self.proc.poll() is None and self.request("GET", "/health", token=False).status == 200

    def log(self):
        with open(os.path.join(str(self.tmp), "agent.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def sanitizer_report(self):
        """The first sanitizer report in this agent's log, or None."""
        log = self.log()
        for mark in SANITIZER_MARKS:
            at = log.find(mark)
            if at >= 0:
                return log[max(0, at - 200):at + 3000]
        return None

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def pytest_configure(config):
    config.addinivalue_line("markers", "once: slow; skipped in the sanitizer pass (runs once)")


# What the sanitizer build (glibc) cannot match, with the reason; the plain pass checks it.
GLIBC_DIFFERENCES = {
    "test_child_starts_clean": "glibc's posix_spawn leaves its internal signals 32 and 33 "
                               "ignored in the child; the musl binary resets them",
}


def pytest_collection_modifyitems(config, items):
    if SANITIZED:
        skip = pytest.mark.skip(reason="slow: runs against the plain binary only")
        for item in items:
            if "once" in item.keywords:
                item.add_marker(skip)
            elif item.originalname in GLIBC_DIFFERENCES:
                item.add_marker(pytest.mark.skip(reason=GLIBC_DIFFERENCES[item.originalname]))


@pytest.fixture(autouse=True)
def _sanitizer_check():
    """Fails a test whose agents logged a sanitizer report (ASan aborts the agent on the
    first one, so the test may have failed already; this names the cause)."""
    first = len(Agent.started)
    yield
    mine = Agent.started[first:]
    del Agent.started[first:]
    for a in mine:
        report = a.sanitizer_report()
        assert report is None, f"sanitizer report in the agent log:\n{report}"


@pytest.fixture(scope="module")
def agent(tmp_path_factory):
    a = Agent(tmp=tmp_path_factory.mktemp("agent"))
    yield a
    rc = a.stop()
    assert rc == 0, f"agent exited {rc}; log:\n{a.log()[-3000:]}"
    report = a.sanitizer_report()
    assert report is None, f"sanitizer report in the agent log:\n{report}"


@pytest.fixture
def start_agent(tmp_path):
    """Factory for an agent with its own flags; stopped after the test."""
    started = []

    def start(*flags, **kw):
        kw.setdefault("tmp", tmp_path)
        a = Agent(*flags, **kw)
        started.append(a)
        return a

    yield start
    for a in started:
        a.stop()
