"""The files API through the real binary: curl (-T, --data-binary, -F with the file part
first, chunked, Range resume) and raw sockets. Errors a user can act on, atomic writes that
leave nothing behind, --files-root confinement against hostile paths and symlink races, a
full disk in a mount namespace of our own."""
import base64
import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse

import pytest

from conftest import SANITIZED, Agent, read_response

Q = urllib.parse.quote


def q(path, **extra):
    return "?" + urllib.parse.urlencode({"path": path, **extra})


def curl(agent, *args, path="", check=True, output="-"):
    """curl against the agent with its token; returns (status, body bytes)."""
    out = subprocess.run(["curl", "-sS", "-o", output, "-w", "\n%{http_code}",
                          "-H", "Authorization: Bearer " + agent.token(), *args,
                          f"http://127.0.0.1:{agent.port}{path}"],
                         capture_output=True, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code), body


def leftovers(d):
    """Temporary files the agent may have left under d."""
    found = []
    for root, dirs, files in os.walk(d):
        found += [os.path.join(root, f) for f in files + dirs if f.startswith(".sandbox-agent-")]
    return found


def wait_for(cond, what, timeout=15):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def err(r, status, code):
    assert r.status == status, r
    body = r.json()
    assert body["code"] == code, body
    assert body["message"] == body["error"]
    return body


@pytest.fixture
def files_agent(start_agent, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    return start_agent(workdir=str(work))


# ---- write and read ----

def test_write_read_roundtrip(files_agent):
    a = files_agent
    r = a.post("/files/write", {"path": "deep/er/hello.txt", "content": "héllo\n"})
    assert r.status == 200, r
    body = r.json()
    assert body["path"] == os.path.join(a.workdir, "deep/er/hello.txt") and body["size"] == 7
    r = a.get("/files/read" + q("deep/er/hello.txt"))
    assert r.status == 200 and r.json()["content"] == "héllo\n" and r.json()["encoding"] == "utf-8"
    raw = bytes(range(256))
    r = a.post("/files/write", {"path": "bin.dat", "content": base64.b64encode(raw).decode(),
                                "encoding": "base64", "mode": "0600"})
    assert r.status == 200, r
    st = os.stat(os.path.join(a.workdir, "bin.dat"))
    assert st.st_mode & 0o777 == 0o600
    with open(os.path.join(a.workdir, "bin.dat"), "rb") as f:
        assert f.read() == raw
    r = a.get("/files/read" + q("bin.dat", encoding="base64"))
    assert base64.b64decode(r.json()["content"]) == raw


def test_write_overwrite_false_and_modes(files_agent):
    a = files_agent
    assert a.post("/files/write", {"path": "x", "content": "1"}).status == 200
    err(a.post("/files/write", {"path": "x", "content": "2", "overwrite": False}), 409,
        "FILE_ALREADY_EXISTS")
    assert open(os.path.join(a.workdir, "x")).read() == "1"
    assert a.post("/files/write", {"path": "x", "content": "3", "overwrite": True}).status == 200
    assert open(os.path.join(a.workdir, "x")).read() == "3"
    err(a.post("/files/write", {"path": "x", "content": "3", "mode": "rwx"}), 400, "INVALID_REQUEST")
    err(a.post("/files/write", {"path": "x", "content": "%%%", "encoding": "base64"}), 400,
        "INVALID_REQUEST")
    err(a.post("/files/write", {"content": "x"}), 400, "MISSING_PARAMETER")
    err(a.post("/files/write", {"path": "a\u0000b", "content": "x"}), 400, "INVALID_PATH")
    err(a.post("/files/write", {"path": "", "content": "x"}), 400, "INVALID_PATH")
    err(a.post("/files/write", {"path": "p" * 5000, "content": "x"}), 400, "INVALID_PATH")
    err(a.post("/files/write", {"path": ".", "content": "x"}), 400, "INVALID_PATH")
    os.mkdir(os.path.join(a.workdir, "adir"))
    err(a.post("/files/write", {"path": "adir", "content": "x"}), 400, "INVALID_PATH")
    assert leftovers(a.workdir) == []


def test_read_errors(files_agent):
    a = files_agent
    b = err(a.get("/files/read" + q("missing.txt")), 404, "FILE_NOT_FOUND")
    assert "not found" in b["message"] and b["path"] == "missing.txt"
    err(a.get("/files/read" + q("nodir/missing.txt")), 404, "FILE_NOT_FOUND")
    os.mkdir(os.path.join(a.workdir, "d"))
    err(a.get("/files/read" + q("d")), 400, "INVALID_PATH")
    err(a.get("/files/download" + q("d")), 400, "INVALID_PATH")
    with open(os.path.join(a.workdir, "bad.bin"), "wb") as f:
        f.write(b"ok \xff\xfe not utf-8")
    b = err(a.get("/files/read" + q("bad.bin")), 400, "FILE_OPERATION_FAILED")
    assert "encoding=base64" in b["message"] and "/files/download" in b["message"]
    err(a.get("/files/read?path="), 400, "INVALID_PATH")
    err(a.get("/files/read?path=a%00b"), 400, "INVALID_PATH")
    err(a.get("/files/read?path=" + "a" * 4200), 400, "INVALID_PATH")
    err(a.get("/files/read"), 400, "MISSING_PARAMETER")
    with open(os.path.join(a.workdir, "f"), "w") as f:
        f.write("x")
    err(a.get("/files/list" + q("f")), 400, "INVALID_PATH")
    err(a.get("/files/read" + q("f/under")), 400, "INVALID_PATH")
    os.mkfifo(os.path.join(a.workdir, "fifo"))
    err(a.get("/files/read" + q("fifo")), 400, "FILE_OPERATION_FAILED")   # never blocks


def test_read_over_64_mib_is_413(files_agent):
    a = files_agent
    with open(os.path.join(a.workdir, "big"), "wb") as f:
        f.truncate((64 << 20) + 1)
    b = err(a.get("/files/read" + q("big")), 413, "PAYLOAD_TOO_LARGE")
    assert "/files/download" in b["message"]


def test_permission_denied_as_another_user(start_agent, request):
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the agent as nobody")
    # pytest's base directory is 0700: nobody needs a path it can walk
    base = tempfile.mkdtemp(prefix="sandbox-agent-files-")
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    os.chmod(base, 0o755)
    top = pathlib.Path(base)
    work = top / "w"
    work.mkdir()
    os.chown(work, 65534, 65534)
    secret = work / "secret"
    secret.write_text("no")
    os.chown(secret, 0, 0)
    os.chmod(secret, 0o600)
    locked = top / "locked"
    locked.mkdir(mode=0o700)
    a = start_agent(workdir=str(work),
                    prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"])
    b = err(a.get("/files/read" + q(str(secret))), 403, "PERMISSION_DENIED")
    assert "not found" not in b["message"]
    err(a.post("/files/write", {"path": str(locked / "f"), "content": "x"}), 403,
        "PERMISSION_DENIED")
    err(a.post("/files/mkdir", {"path": str(locked / "d")}), 403, "PERMISSION_DENIED")
    assert a.post("/files/write", {"path": "mine", "content": "ok"}).status == 200


# ---- list, exists, stat ----

def test_list_sorted_both_spellings(files_agent):
    a = files_agent
    w = a.workdir
    for n in ["b.txt", "a.txt", "C.txt", "sub/inner.txt", "sub/deeper/x"]:
        os.makedirs(os.path.dirname(os.path.join(w, n)), exist_ok=True)
        with open(os.path.join(w, n), "w") as f:
            f.write(n)
    os.symlink("a.txt", os.path.join(w, "link"))
    os.chmod(os.path.join(w, "a.txt"), 0o640)
    r = a.get("/files/list")
    assert r.status == 200, r
    body = r.json()
    names = [f["name"] for f in body["files"]]
    assert names == ["C.txt", "a.txt", "b.txt", "link", "sub"]
    assert body["count"] == 5 and body["truncated"] is False and body["path"] == w
    e = {f["name"]: f for f in body["files"]}
    assert e["a.txt"]["permissions"] == "rw-r-----" and e["a.txt"]["mode"] == "0640"
    assert e["a.txt"]["size"] == 5 and e["a.txt"]["type"] == "file"
    assert e["sub"]["is_dir"] is True and e["sub"]["is_directory"] is True
    assert e["link"]["type"] == "symlink" and e["link"]["is_symlink"] and e["link"]["symlink_target"] == "a.txt"
    for k in ("modified", "modified_time", "owner", "group", "path"):
        assert k in e["a.txt"]
    assert e["a.txt"]["modified"].endswith("Z") and e["a.txt"]["modified"] == e["a.txt"]["modified_time"]
    r = a.get("/files/list" + q(w, depth=3))
    paths = [os.path.relpath(f["path"], w) for f in r.json()["files"]]
    assert paths == ["C.txt", "a.txt", "b.txt", "link", "sub", "sub/deeper", "sub/deeper/x",
                     "sub/inner.txt"]
    err(a.get("/files/list" + q("nope")), 404, "FILE_NOT_FOUND")
    err(a.get("/files/list" + q(w, depth=0)), 400, "INVALID_REQUEST")


def test_list_bounded_at_10000(files_agent):
    a = files_agent
    d = os.path.join(a.workdir, "many")
    os.mkdir(d)
    for i in range(10005):
        open(os.path.join(d, f"f{i:05d}"), "w").close()
    r = a.get("/files/list" + q(d))
    body = r.json()
    assert body["count"] == 10000 and len(body["files"]) == 10000 and body["truncated"] is True
    names = [f["name"] for f in body["files"]]
    assert names == sorted(names)


def test_exists_and_stat(files_agent):
    a = files_agent
    r = a.get("/files/exists" + q("nope"))
    assert r.status == 200 and r.json() == {"exists": False, "path": "nope", "type": None}
    os.mkdir(os.path.join(a.workdir, "d"))
    assert a.get("/files/exists" + q("d")).json()["type"] == "dir"
    r = a.get("/files/stat" + q("d"))
    assert r.status == 200 and r.json()["is_dir"] and r.json()["name"] == "d"
    err(a.get("/files/stat" + q("nope")), 404, "FILE_NOT_FOUND")


# ---- remove, mkdir, move ----

def test_remove(files_agent):
    a = files_agent
    w = a.workdir
    os.makedirs(os.path.join(w, "t/a/b"))
    open(os.path.join(w, "t/a/b/f"), "w").close()
    os.symlink("/etc", os.path.join(w, "t/a/etc-link"))
    err(a.request("DELETE", "/files/remove" + q("t", recursive="false")), 400,
        "FILE_OPERATION_FAILED")
    r = a.request("DELETE", "/files/remove" + q("t"))
    assert r.status == 200 and r.json()["removed"] is True
    assert not os.path.exists(os.path.join(w, "t")) and os.path.exists("/etc/hostname")
    err(a.request("DELETE", "/files/remove" + q("t")), 404, "FILE_NOT_FOUND")
    err(a.request("DELETE", "/files/remove" + q("/")), 400, "INVALID_PATH")
    err(a.request("DELETE", "/files/remove" + q(w)), 400, "INVALID_PATH")
    err(a.request("DELETE", "/files/remove" + q(".")), 400, "INVALID_PATH")
    assert os.path.isdir(w)


def test_mkdir(files_agent):
    a = files_agent
    r = a.post("/files/mkdir", {"path": "m/n/o"})
    assert r.status == 200 and r.json()["created"] is True
    assert os.path.isdir(os.path.join(a.workdir, "m/n/o"))
    assert a.post("/files/mkdir", {"path": "m/n/o"}).json()["created"] is False
    open(os.path.join(a.workdir, "file"), "w").close()
    err(a.post("/files/mkdir", {"path": "file"}), 409, "FILE_ALREADY_EXISTS")
    err(a.post("/files/mkdir", {"path": "file/sub"}), 400, "INVALID_PATH")
    r = a.post("/files/mkdir", {"path": "modes", "mode": "0700"})
    assert os.stat(os.path.join(a.workdir, "modes")).st_mode & 0o777 == 0o700


def test_move(files_agent):
    a = files_agent
    w = a.workdir
    with open(os.path.join(w, "src"), "w") as f:
        f.write("s")
    r = a.post("/files/move", {"from": "src", "to": "new/dst"})
    assert r.status == 200, r
    assert open(os.path.join(w, "new/dst")).read() == "s" and not os.path.exists(os.path.join(w, "src"))
    with open(os.path.join(w, "other"), "w") as f:
        f.write("o")
    err(a.post("/files/move", {"source": "other", "destination": "new/dst"}), 409,
        "FILE_ALREADY_EXISTS")
    r = a.post("/files/move", {"source": "other", "destination": "new/dst", "overwrite": True})
    assert r.status == 200 and open(os.path.join(w, "new/dst")).read() == "o"
    b = err(a.post("/files/move", {"from": "gone", "to": "x"}), 404, "FILE_NOT_FOUND")
    assert b["path"] == "gone"
    err(a.post("/files/move", {"from": "new"}), 400, "MISSING_PARAMETER")


def test_move_across_filesystems(files_agent):
    a = files_agent
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(a.workdir).st_dev:
        pytest.skip("no second filesystem at /dev/shm")
    tree = os.path.join(a.workdir, "tree")
    os.makedirs(os.path.join(tree, "sub"))
    with open(os.path.join(tree, "sub/f"), "wb") as f:
        f.write(os.urandom(100000))
    os.symlink("sub/f", os.path.join(tree, "ln"))
    os.chmod(os.path.join(tree, "sub/f"), 0o751)
    dst = os.path.join(shm, f"sandbox-agent-test-{os.getpid()}-{time.monotonic_ns()}")
    try:
        r = a.post("/files/move", {"from": "tree", "to": dst})
        assert r.status == 200, r
        assert not os.path.exists(tree)
        assert os.readlink(os.path.join(dst, "ln")) == "sub/f"
        assert os.stat(os.path.join(dst, "sub/f")).st_mode & 0o777 == 0o751
        assert os.path.getsize(os.path.join(dst, "sub/f")) == 100000
        assert leftovers(shm) == []
    finally:
        shutil.rmtree(dst, ignore_errors=True)


# ---- uploads ----

def test_upload_curl_forms(files_agent, tmp_path):
    a = files_agent
    data = os.urandom(3 * 1024 * 1024 + 17)
    src = tmp_path / "src.bin"
    src.write_bytes(data)
    w = a.workdir
    # curl -T (PUT, Content-Length, Expect: 100-continue)
    code, body = curl(a, "-T", str(src), path="/files/upload" + q("t/put.bin"))
    assert code == 200 and json.loads(body)["size"] == len(data), body
    # --data-binary (POST)
    code, body = curl(a, "--data-binary", "@" + str(src), path="/files/upload" + q("post.bin"))
    assert code == 200, body
    # chunked
    code, body = curl(a, "-H", "Transfer-Encoding: chunked", "--data-binary", "@" + str(src),
                      path="/files/upload" + q("chunked.bin"))
    assert code == 200, body
    # multipart, file part before the path field (the SDK's order): staged, then renamed
    code, body = curl(a, "-F", f"file=@{src};filename=any.bin", "-F", f"path={w}/mp/first.bin",
                      path="/files/upload")
    assert code == 200 and json.loads(body)["path"] == f"{w}/mp/first.bin", body
    # path field first
    code, body = curl(a, "-F", "path=mp/second.bin", "-F", f"file=@{src}", path="/files/upload")
    assert code == 200, body
    # ?path= with multipart
    code, body = curl(a, "-F", f"file=@{src}", path="/files/upload" + q("mp/third.bin"))
    assert code == 200, body
    for n in ["t/put.bin", "post.bin", "chunked.bin", "mp/first.bin", "mp/second.bin", "mp/third.bin"]:
        with open(os.path.join(w, n), "rb") as f:
            assert f.read() == data, n
    assert leftovers(w) == []


def test_upload_errors(files_agent, tmp_path):
    a = files_agent
    src = tmp_path / "s"
    src.write_bytes(b"abc")
    code, body = curl(a, "--data-binary", "@" + str(src), path="/files/upload")
    assert code == 400 and json.loads(body)["code"] == "MISSING_PARAMETER"
    code, body = curl(a, "-F", f"file=@{src}", path="/files/upload")
    assert code == 400 and json.loads(body)["code"] == "MISSING_PARAMETER"
    code, body = curl(a, "-F", "path=x", path="/files/upload")
    assert code == 400 and json.loads(body)["code"] == "MISSING_PARAMETER"
    assert a.post("/files/write", {"path": "exists", "content": "old"}).status == 200
    code, body = curl(a, "--data-binary", "@" + str(src),
                      path="/files/upload" + q("exists", overwrite="false"))
    assert code == 409 and json.loads(body)["code"] == "FILE_ALREADY_EXISTS"
    assert open(os.path.join(a.workdir, "exists")).read() == "old"
    r = a.request("POST", "/files/upload" + q("m"), raw_body=b"--b\r\nno-colon\r\n\r\nx\r\n--b--",
                  headers={"Content-Type": "multipart/form-data; boundary=b"})
    err(r, 400, "INVALID_REQUEST")
    r = a.request("POST", "/files/upload" + q("m"), raw_body=b"--b\r\n\r\nx",
                  headers={"Content-Type": "multipart/form-data; boundary=b"})
    err(r, 400, "INVALID_REQUEST")   # ended before the closing boundary
    r = a.request("POST", "/files/upload" + q("m"), raw_body=b"x",
                  headers={"Content-Type": "multipart/form-data"})
    err(r, 400, "INVALID_REQUEST")
    r = a.request("POST", "/files/upload" + q("m"), raw_body=b"x", token=False)
    assert r.status == 401
    assert leftovers(a.workdir) == [] and not os.path.exists(os.path.join(a.workdir, "m"))


def test_upload_keepalive_and_pipelining(files_agent):
    a = files_agent
    tok = a.token()
    req = b""
    for i in range(3):
        body = f"body-{i}".encode() * 1000
        req += (f"PUT /files/upload?path=p{i} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    req += (f"POST /files/upload?path=pc HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n").encode()
    req += b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    with a.connect() as s:
        s.sendall(req)
        for i in range(4):
            r = read_response(s)
            assert r.status == 200, r
        assert read_response(s).json()["status"] == "ok"
    for i in range(3):
        assert open(os.path.join(a.workdir, f"p{i}")).read() == f"body-{i}" * 1000
    assert open(os.path.join(a.workdir, "pc")).read() == "abc"


@pytest.mark.parametrize("chunked", [False, True])
def test_cut_off_upload_leaves_nothing(files_agent, chunked):
    a = files_agent
    target = os.path.join(a.workdir, "cut.bin")
    with open(target, "w") as f:
        f.write("old")
    head = (f"PUT /files/upload?path=cut.bin HTTP/1.1\r\nHost: x\r\n"
            f"Authorization: Bearer {a.token()}\r\n")
    head += "Transfer-Encoding: chunked\r\n\r\n" if chunked else "Content-Length: 10000000\r\n\r\n"
    s = a.connect()
    s.sendall(head.encode())
    chunk = os.urandom(65536)
    for _ in range(16):
        s.sendall((b"10000\r\n" + chunk + b"\r\n") if chunked else chunk)
    wait_for(lambda: leftovers(a.workdir), "the temporary file")
    s.close()
    wait_for(lambda: not leftovers(a.workdir), "the temporary file to go")
    assert open(target).read() == "old"
    assert a.alive()


def test_upload_malformed_chunk_leaves_nothing(files_agent):
    a = files_agent
    req = (f"PUT /files/upload?path=mal HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {a.token()}\r\n"
           "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n").encode()
    out = a.raw(req)
    assert b" 400 " in out.split(b"\r\n")[0]
    assert leftovers(a.workdir) == [] and not os.path.exists(os.path.join(a.workdir, "mal"))


def test_readers_see_old_or_new(files_agent):
    """Atomic replace: while uploads replace a file, every read sees one whole version."""
    a = files_agent
    versions = [bytes([65 + i]) * 200000 for i in range(4)]
    path = os.path.join(a.workdir, "atomic")
    with open(path, "wb") as f:
        f.write(versions[0])
    stop = threading.Event()
    seen = set()
    bad = []

    def reader():
        while not stop.is_set():
            try:
                with open(path, "rb") as f:
                    d = f.read()
            except FileNotFoundError:
                bad.append("missing")
                continue
            if d not in versions:
                bad.append(len(d))
            seen.add(d[:1])

    t = threading.Thread(target=reader)
    t.start()
    try:
        for i in range(20):
            r = a.request("PUT", "/files/upload" + q("atomic"), raw_body=versions[i % 4])
            assert r.status == 200
    finally:
        stop.set()
        t.join()
    assert bad == []


# ---- downloads ----

def test_download_headers_range_and_resume(files_agent, tmp_path):
    a = files_agent
    data = os.urandom(1 << 20)
    with open(os.path.join(a.workdir, "dl name.bin"), "wb") as f:
        f.write(data)
    p = "/files/download" + q("dl name.bin")
    r = a.get(p)
    assert r.status == 200 and r.body == data
    assert r.header("content-type") == "application/octet-stream"
    assert r.header("content-length") == str(len(data))
    assert 'filename="dl name.bin"' in r.header("content-disposition")
    etag, lm = r.header("etag"), r.header("last-modified")
    assert etag.startswith('"') and lm.endswith("GMT") and r.header("accept-ranges") == "bytes"
    r = a.get(p, headers={"Range": "bytes=100-199"})
    assert r.status == 206 and r.body == data[100:200]
    assert r.header("content-range") == f"bytes 100-199/{len(data)}"
    r = a.get(p, headers={"Range": "bytes=-10"})
    assert r.status == 206 and r.body == data[-10:]
    r = a.get(p, headers={"Range": f"bytes={len(data) - 5}-"})
    assert r.status == 206 and r.body == data[-5:]
    r = a.get(p, headers={"Range": f"bytes={len(data)}-"})
    assert r.status == 416 and r.header("content-range") == f"bytes */{len(data)}"
    r = a.get(p, headers={"If-None-Match": etag})
    assert r.status == 304 and r.body == b""
    r = a.get(p, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert r.status == 200 and r.body == data
    r = a.get(p, headers={"Range": "bytes=0-9", "If-Range": etag})
    assert r.status == 206 and r.body == data[:10]
    r = a.request("HEAD", p)
    assert r.status == 200 and r.header("content-length") == str(len(data))
    # curl resumes a broken download with -C -
    out = tmp_path / "part"
    out.write_bytes(data[:300000])
    code, _ = curl(a, "-C", "-", output=str(out), path=p)
    assert code == 206 and out.read_bytes() == data
    err(a.get("/files/download" + q("nope")), 404, "FILE_NOT_FOUND")


def test_download_keepalive_then_next_request(files_agent):
    a = files_agent
    with open(os.path.join(a.workdir, "k"), "wb") as f:
        f.write(b"k" * 300000)
    tok = a.token()
    req = (f"GET /files/download?path=k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\r\n"
           f"HEAD /files/download?path=k HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n\r\n"
           "GET /health HTTP/1.1\r\nHost: x\r\n\r\n").encode()
    with a.connect() as s:
        s.sendall(req)
        assert read_response(s).body == b"k" * 300000
        assert read_response(s, head_only=True).status == 200
        assert read_response(s).json()["status"] == "ok"


@pytest.mark.once
def test_big_upload_download_memory_flat(files_agent, tmp_path):
    a = files_agent
    src = tmp_path / "big"
    with open(src, "wb") as f:
        f.truncate(300 << 20)
        f.seek(123 << 20)
        f.write(b"marker")
    code, body = curl(a, "-T", str(src), path="/files/upload" + q("big"))
    assert code == 200, body
    code, _ = curl(a, output=str(tmp_path / "back"), path="/files/download" + q("big"))
    assert code == 200
    assert os.path.getsize(tmp_path / "back") == 300 << 20
    with open(tmp_path / "back", "rb") as f:
        f.seek(123 << 20)
        assert f.read(6) == b"marker"
    with open(f"/proc/{a.proc.pid}/status") as f:
        hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM:"))
    assert hwm < 16 * 1024, f"peak RSS {hwm} KiB"


# ---- a full disk ----

def test_disk_full_leaves_nothing(start_agent, tmp_path):
    if os.geteuid() != 0 or subprocess.run(["unshare", "-m", "true"]).returncode != 0:
        pytest.skip("needs unshare -m (root)")
    mnt = tmp_path / "small"
    mnt.mkdir()
    # a private mount namespace with a 1 MiB tmpfs as the workdir: only the agent sees it
    prefix = ["unshare", "-m", "--propagation", "private", "sh", "-c",
              'mount -t tmpfs -o size=1m none "$0" && exec "$@"', str(mnt)]
    a = start_agent(workdir=str(mnt), prefix=prefix)
    tok = a.token()
    data = os.urandom(3 << 20)
    for args in (["--data-binary", "@-"], ["-F", "file=@-", "-F", "path=full.bin"]):
        out = subprocess.run(["curl", "-sS", "-H", f"Authorization: Bearer {tok}", *args,
                              f"http://127.0.0.1:{a.port}/files/upload?path=full.bin"],
                             input=data, capture_output=True, timeout=60)
        body = json.loads(out.stdout)
        assert body["code"] == "FILE_OPERATION_FAILED" and "no space left on device" in body["message"], body
    b = err(a.post("/files/write", {"path": "w.bin", "content": base64.b64encode(data).decode(),
                                    "encoding": "base64"}), 400, "FILE_OPERATION_FAILED")
    assert "no space left on device" in b["message"]
    listing = a.get("/files/list" + q(str(mnt))).json()
    assert listing["files"] == [], listing
    assert a.post("/files/write", {"path": "small", "content": "fits"}).status == 200


# ---- confinement ----

@pytest.fixture(params=["openat2", "walk"])
def confined(request, start_agent, tmp_path):
    """An agent with --files-root ROOT; the workdir inside it; OUT beside it with a secret."""
    root = tmp_path / "root"
    (root / "work").mkdir(parents=True)
    (root / "inside").mkdir()
    (root / "inside" / "probe").write_text("inside")
    out = tmp_path / "out"
    out.mkdir()
    (out / "probe").write_text("OUTSIDE")
    env = {"SANDBOX_AGENT_FILES_NO_OPENAT2": "1"} if request.param == "walk" else {}
    a = start_agent("--files-root", str(root), workdir=str(root / "work"), env=env)
    wait_for(lambda: "event=files" in a.log(), "the files log line")
    log = a.log()
    if request.param == "openat2" and "confinement=openat2" not in log:
        pytest.skip("kernel without openat2")
    assert f"confinement={request.param}" in log
    return a, root, out, request.param


def test_confined_dotdot_and_absolute(confined):
    a, root, out, mode = confined
    assert a.get("/files/read" + q(str(root / "inside/probe"))).json()["content"] == "inside"
    assert a.get("/files/read" + q("../inside/probe")).json()["content"] == "inside"
    for p in ["../../out/probe", str(out / "probe"), "/etc/passwd", str(root / ".." / "out/probe"),
              str(root) + "/../out/probe", str(root) + "x/probe", "../.."]:
        b = err(a.get("/files/read" + q(p)), 403, "PERMISSION_DENIED")
        assert "not found" not in b["message"]
    err(a.post("/files/write", {"path": "../../out/new", "content": "x"}), 403, "PERMISSION_DENIED")
    err(a.post("/files/mkdir", {"path": str(out / "d")}), 403, "PERMISSION_DENIED")
    err(a.post("/files/move", {"from": "../inside/probe", "to": str(out / "m")}), 403, "PERMISSION_DENIED")
    err(a.request("DELETE", "/files/remove" + q(str(out / "probe"))), 403, "PERMISSION_DENIED")
    err(a.request("DELETE", "/files/remove" + q(str(root))), 400, "INVALID_PATH")
    err(a.get("/files/list" + q("/")), 403, "PERMISSION_DENIED")
    assert a.get("/files/exists" + q(str(out / "probe"))).json()["exists"] is False
    assert sorted(os.listdir(out)) == ["probe"] and (out / "probe").read_text() == "OUTSIDE"


def test_confined_symlinks(confined):
    a, root, out, mode = confined
    os.symlink(str(out), root / "abs-dir")              # absolute, out of the root
    os.symlink(str(out / "probe"), root / "abs-file")
    os.symlink("../out/probe", root / "rel-escape")     # relative, out of the root
    os.symlink("inside/probe", root / "rel-ok")          # relative, inside
    for p in ["abs-dir/probe", "abs-file", "rel-escape"]:
        for ep in ("/files/read", "/files/download"):
            r = a.get(ep + q(str(root / p)))
            err(r, 403, "PERMISSION_DENIED")
    r = a.get("/files/read" + q(str(root / "rel-ok")))
    if mode == "openat2":
        assert r.json()["content"] == "inside"
    else:   # the walk follows no symlink at all
        err(r, 403, "PERMISSION_DENIED")
    err(a.get("/files/list" + q(str(root / "abs-dir"))), 403, "PERMISSION_DENIED")
    err(a.post("/files/write", {"path": str(root / "abs-dir/new"), "content": "x"}), 403,
        "PERMISSION_DENIED")
    code, _ = curl(a, "--data-binary", "x", path="/files/upload" + q(str(root / "abs-dir/up")))
    assert code == 403
    err(a.post("/files/mkdir", {"path": str(root / "abs-dir/sub")}), 403, "PERMISSION_DENIED")
    # the link itself is an entry of the root: stat, list and remove see the link, not out/
    st = a.get("/files/stat" + q(str(root / "abs-dir"))).json()
    assert st["type"] == "symlink" and st["symlink_target"] == str(out)
    names = [f["name"] for f in a.get("/files/list" + q(str(root), depth=3)).json()["files"]]
    assert "abs-dir" in names and "probe" in names and names.count("probe") == 1
    assert a.request("DELETE", "/files/remove" + q(str(root / "abs-dir"))).status == 200
    assert sorted(os.listdir(out)) == ["probe"] and (out / "probe").read_text() == "OUTSIDE"


def test_confined_symlink_race(confined):
    """A process in the sandbox flips a link between a directory inside the root and one
    outside while requests go through it: no request ever reaches outside."""
    a, root, out, mode = confined
    stop = threading.Event()
    link = root / "flip"
    tmp_link = root / "flip.tmp"

    def flipper():
        targets = ["inside", str(out)]
        i = 0
        while not stop.is_set():
            try:
                os.symlink(targets[i % 2], tmp_link)
                os.replace(tmp_link, link)
            except OSError:
                pass
            i += 1

    t = threading.Thread(target=flipper)
    t.start()
    results = set()
    try:
        for i in range(150):
            r = a.get("/files/read" + q(str(link / "probe")))
            if r.status == 200:
                results.add(r.json()["content"])
            else:
                assert r.status in (403, 404), r
            r = a.post("/files/write", {"path": str(link / f"w{i}"), "content": "x"})
            assert r.status in (200, 403, 404), r
    finally:
        stop.set()
        t.join()
    assert "OUTSIDE" not in results
    assert sorted(os.listdir(out)) == ["probe"] and (out / "probe").read_text() == "OUTSIDE"


def test_files_root_missing_refuses_start(tmp_path):
    p = subprocess.run([os.environ.get("AGENT_BIN") or "build/sandbox-agent", "--no-auth",
                        "--listen", "127.0.0.1:0", "--workdir", str(tmp_path),
                        "--files-root", str(tmp_path / "nope")], capture_output=True, timeout=10)
    assert p.returncode == 2 and b"--files-root" in p.stderr
