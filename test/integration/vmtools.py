"""The agent as a QEMU VM's /init, booted through scripts/vm.sh (its build and boot steps),
for test_vm.py and bench/vm.py. A VM talks like conftest's Agent (request/get/post/token)
through the host forward on 127.0.0.1; its serial console is the agent's log."""
import os
import shutil
import subprocess
import time

from conftest import BIN, SECRET, Agent, free_port

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
VM_SH = os.path.join(ROOT, "scripts/vm.sh")
VM_DIR = os.path.join(ROOT, "build/vm")
QEMU = "qemu-system-x86_64"
# the modules a VM's NIC needs, in nic.modules order (scripts/vm.sh)
NIC_MODULES = ("virtio_ring", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio",
               "virtio_pci", "failover", "net_failover", "virtio_net")


def is_static(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True)
    return "not a dynamic executable" in out.stdout + out.stderr


def missing_tools():
    """Why VMs cannot run here (QEMU and friends not installed), or None."""
    for tool in (QEMU, "cpio", "dpkg-deb", "apt-get"):
        if not shutil.which(tool):
            return f"{tool} is not installed (scripts/deps.sh vm)"
    bb = shutil.which("busybox") or "/bin/busybox"
    if not os.path.exists(bb) or not is_static(bb):
        return "no static busybox (busybox-static)"
    return None


def build(agent_bin=BIN):
    """build/vm/{vmlinuz,initrd.img} for agent_bin (a static build: it is the VM's /init).
    Fetches the kernel once (apt-get download)."""
    subprocess.run([VM_SH, "build", agent_bin], cwd=ROOT, check=True, timeout=600,
                   stdout=subprocess.DEVNULL)


def cpio_archive(files, out):
    """A newc cpio archive of {path inside: (bytes, mode)} (directories implied), appended
    to an initrd: the kernel unpacks concatenated archives in order, later files win."""
    stage = out + ".d"
    shutil.rmtree(stage, ignore_errors=True)
    names = []
    for path, (data, mode) in files.items():
        full = os.path.join(stage, path)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        os.chmod(full, mode)
        names.append(path)
    listing = "".join(n + "\n" for n in names).encode()
    with open(out, "wb") as f:
        subprocess.run(["cpio", "-o", "-H", "newc", "-R", "0:0", "--quiet"], cwd=stage,
                       input=listing, stdout=f, check=True)
    shutil.rmtree(stage)
    return out


def initrd_with(tmp, files):
    """build/vm/initrd.img plus an archive of files, as a new initrd in tmp."""
    out = os.path.join(str(tmp), "initrd-extra.img")
    extra = cpio_archive(files, os.path.join(str(tmp), "extra.cpio"))
    with open(out, "wb") as f:
        for part in (os.path.join(VM_DIR, "initrd.img"), extra):
            with open(part, "rb") as p:
                shutil.copyfileobj(p, f)
    return out


class VM(Agent):
    """One QEMU VM booted by scripts/vm.sh boot. proc is QEMU (vm.sh execs it); its stdin is
    a pipe to the serial console muxed with the monitor (Ctrl-A c switches)."""

    def __init__(self, tmp, append="", net=None, initrd=None, init=None, mem=None):
        self.tmp = str(tmp)
        self.secret = SECRET
        self._token = None
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        secret_file = os.path.join(self.tmp, "vm-secret")
        with open(secret_file, "w") as f:
            f.write(SECRET)
        os.chmod(secret_file, 0o600)
        env = dict(os.environ, VM_PORT=str(self.port), VM_SECRET=secret_file, VM_APPEND=append)
        for k, v in (("VM_NET", net), ("VM_INITRD", initrd), ("VM_INIT", init), ("VM_MEM", mem)):
            if v:
                env[k] = str(v)
        self.log_path = os.path.join(self.tmp, "agent.log")
        self.started_at = time.monotonic()
        self.proc = subprocess.Popen([VM_SH, "boot"], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                                     stdout=open(self.log_path, "wb"), stderr=subprocess.STDOUT)

    def log(self):
        """The serial console so far: kernel messages and the agent's log lines."""
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def sanitizer_report(self):
        return None   # the VM's /init is the plain static build

    def wait_serial(self, text, timeout=120):
        deadline = time.monotonic() + timeout
        while text not in self.log():
            assert self.proc.poll() is None or text in self.log(), \
                f"QEMU exited {self.proc.returncode} before {text!r}:\n{self.log()[-4000:]}"
            assert time.monotonic() < deadline, f"no {text!r} after {timeout}s:\n{self.log()[-4000:]}"
            time.sleep(0.1)

    def wait_health(self, timeout=180, attempt=2.0):
        """Polls /health through the forward until the agent answers; returns the seconds
        from QEMU's start. Generous: under TCG on a busy machine a boot can take a while.
        attempt: seconds one try may take. The forward accepts at once and then connects to
        the guest; a SYN sent before the guest is up is retried on slirp's TCP timers
        (seconds), so a timing wants short attempts, each a fresh connection."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, \
                f"QEMU exited {self.proc.returncode}:\n{self.log()[-4000:]}"
            try:   # the forward accepts, then drops or closes, until the guest listens
                r = self.request("GET", "/health", token=False, timeout=attempt)
                if r is not None and r.status == 200:
                    return time.monotonic() - self.started_at
            except OSError:
                pass
            assert time.monotonic() < deadline, f"no /health after {timeout}s:\n{self.log()[-4000:]}"
            time.sleep(0.05)

    def run(self, command, **kw):
        r = self.post("/commands/run", {"command": command, "timeout": 60, **kw}, timeout=90)
        assert r.status == 200, r
        return r.json()

    def monitor(self, line):
        """A QEMU monitor command over the muxed stdio (Ctrl-A c, command, Ctrl-A c back)."""
        self.proc.stdin.write(b"\x01c" + line.encode() + b"\n\x01c")
        self.proc.stdin.flush()

    def wait_exit(self, timeout=120):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"QEMU still running after {timeout}s:\n{self.log()[-4000:]}")

    def stop(self, timeout=10):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdin:
            self.proc.stdin.close()
        return self.proc.returncode
