"""The image (make image / scripts/image.sh) run with podman: the agent as the container's
PID 1, reaping orphans, and `podman stop` ending it cleanly. Skipped, with a warning, only
where podman cannot run at all."""
import os
import shutil
import subprocess
import time
import uuid
import warnings

import pytest

from conftest import BIN, SECRET, Agent, free_port

TOP = os.path.normpath(os.path.join(os.path.dirname(__file__), "../.."))
IMAGE = "localhost/sandbox-agent:test-" + uuid.uuid4().hex[:8]   # concurrent runs never share
GRACE = 2
RUN = ["podman", "run", "--runtime", "runc", "--ulimit", "nofile=4096:4096",
       "--ulimit", "nproc=4096:4096"]

pytestmark = pytest.mark.once   # the image holds the static binary; no sanitizer pass


def podman_unusable():
    """Why podman cannot run here, or None."""
    if not shutil.which("podman"):
        return "podman is not installed (scripts/deps.sh test installs it)"
    r = subprocess.run(["podman", "info"], capture_output=True, text=True, timeout=60)
    return None if r.returncode == 0 else "podman info failed: " + r.stderr.strip()[-300:]


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    why = podman_unusable()
    if why:
        warnings.warn(f"container tests skipped: {why}")
        pytest.skip(why)
    rootfs = tmp_path_factory.mktemp("rootfs")
    r = subprocess.run(["scripts/image.sh", BIN], cwd=TOP, capture_output=True, text=True,
                       timeout=300, env=dict(os.environ, IMAGE=IMAGE, ROOTFS=str(rootfs)))
    assert r.returncode == 0, f"image build failed:\n{r.stdout}\n{r.stderr}"
    size = int(subprocess.check_output(["podman", "image", "inspect", "--format", "{{.Size}}", IMAGE]))
    yield IMAGE, size
    subprocess.run(["podman", "rmi", "-f", IMAGE], capture_output=True, timeout=60)


class Container(Agent):
    """A running container of the image, spoken to like the other agents (Agent's client)."""

    def __init__(self, image, *env):
        self.secret = SECRET
        self.tmp = None
        self._token = None
        self.name = "sa-test-" + uuid.uuid4().hex[:10]
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        args = [*RUN, "-d", "--name", self.name, "-p", f"{self.addr}:7777",
                "-e", f"SANDBOX_AGENT_JWT_SECRET={SECRET}", "-e", f"SANDBOX_AGENT_GRACE={GRACE}"]
        for e in env:
            args += ["-e", e]
        r = subprocess.run([*args, image], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, f"podman run failed: {r.stderr}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.request("GET", "/health", token=False, timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no /health answer:\n{self.log()}"
            time.sleep(0.05)

    def log(self):
        r = subprocess.run(["podman", "logs", self.name], capture_output=True, text=True, timeout=30)
        return r.stdout + r.stderr

    def inspect(self, fmt):
        return subprocess.check_output(["podman", "inspect", "--format", fmt, self.name],
                                       text=True, timeout=30).strip()

    def run(self, command, timeout=30):
        r = self.post("/commands/run", {"command": command, "timeout": timeout}, timeout=timeout + 10)
        assert r.status == 200, r
        return r.json()

    def remove(self):
        subprocess.run(["podman", "rm", "-f", "-t", "0", self.name], capture_output=True, timeout=60)


@pytest.fixture
def container(image):
    made = []

    def start(*env):
        c = Container(image[0], *env)
        made.append(c)
        return c

    yield start
    for c in made:
        c.remove()


def states(c):
    """(pid, state, comm) of every process in the container, read from its /proc."""
    out = c.run("cat /proc/[0-9]*/stat 2>/dev/null")["stdout"]
    procs = []
    for line in out.splitlines():
        head, _, rest = line.rpartition(")")
        pid, _, comm = head.partition(" (")
        procs.append((int(pid), rest.split()[0], comm))
    return procs


def test_image_is_small(image):
    assert image[1] < 3 * 1024 * 1024, image[1]


def test_health_pid1_and_no_zombies(container):
    c = container()
    h = c.get("/health", token=False).json()
    assert h["status"] == "ok" and h["agent"] == "sandbox-agent"
    assert c.run("cat /proc/1/comm")["stdout"] == "sandbox-agent\n"
    r = c.run("sh -c 'sleep 1 & sleep 1 & exit'; echo started")
    assert r["exit_code"] == 0 and r["stdout"] == "started\n"
    # the two orphans end after a second and are reaped by PID 1: wait for that state
    deadline = time.monotonic() + 60
    while True:
        procs = states(c)
        if not [p for p in procs if p[1] == "Z" or p[2] == "sleep"] or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [p for p in procs if p[1] == "Z"] == [], procs
    assert [p for p in procs if p[2] == "sleep"] == [], procs
    # busybox is there for commands: a shell, coreutils, a writable /tmp and /workspace
    r = c.run("pwd; ls -ld /tmp; echo hi > /tmp/x && cat /tmp/x; id -u")
    assert r["stdout"].splitlines() == ["/workspace", r["stdout"].splitlines()[1], "hi", "0"]
    assert r["stdout"].splitlines()[1].startswith("drwxrwxrwt")


def test_podman_stop_ends_within_the_grace_with_status_0(container):
    c = container()
    c.post("/commands/background", {"command": "trap '' TERM; sleep 301"})
    c.post("/commands/background", {"command": "sleep 302"})
    c.run("setsid sh -c 'sleep 303 &'")   # an orphan, adopted by PID 1
    # busybox setsid forks when it leads its group: the orphan's sleep comes a little later
    deadline = time.monotonic() + 60
    while (names := [p[2] for p in states(c)]).count("sleep") != 3:
        assert time.monotonic() < deadline, names
        time.sleep(0.05)
    t0 = time.monotonic()
    # podman's own SIGKILL comes only after GRACE + 60 s: exit code 0 proves the agent ended
    # by itself, whatever the machine's load
    r = subprocess.run(["podman", "stop", "-t", str(GRACE + 60), c.name], capture_output=True,
                       text=True, timeout=GRACE + 120)
    elapsed = time.monotonic() - t0
    assert r.returncode == 0, r.stderr
    assert c.inspect("{{.State.Status}}") == "exited"
    assert c.inspect("{{.State.ExitCode}}") == "0", c.log()
    # the TERM-ignoring child held it for the grace, no longer (podman did not need SIGKILL)
    assert GRACE - 0.5 <= elapsed < GRACE + 60, elapsed
    log = c.log()
    assert "event=shutdown phase=term" in log and "event=shutdown phase=kill" in log
    assert "children_left=0" in log, log
    # nothing of the container is left on the host
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            assert argv[:2] not in ([b"sleep", b"301"], [b"sleep", b"302"], [b"sleep", b"303"]), d


def test_secret_from_a_mounted_file(image, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text(SECRET + "\n")
    name = "sa-test-" + uuid.uuid4().hex[:10]
    port = free_port()
    try:
        r = subprocess.run([*RUN, "-d", "--name", name, "-p", f"127.0.0.1:{port}:7777",
                            "-v", f"{secret}:/run/secrets/agent:ro",
                            "-e", "SANDBOX_AGENT_JWT_SECRET_FILE=/run/secrets/agent", image[0]],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        c = Container.__new__(Container)
        c.secret, c.tmp, c._token, c.name, c.port = SECRET, None, None, name, port
        deadline = time.monotonic() + 60
        while True:
            try:
                if c.request("GET", "/info", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, c.log()
            time.sleep(0.05)
        assert c.get("/info", token="bad.token.here").status == 401
    finally:
        subprocess.run(["podman", "rm", "-f", "-t", "0", name], capture_output=True, timeout=60)
