"""`user` on the files endpoints that create things (issue 18): write, upload (raw, PUT and
multipart), mkdir and the parents a move makes are owned by the user named by ?user= or a
`user` field (a name from /etc/passwd or a uid), or by --default-user. Unknown users are 400,
a non-root agent asked for someone else is 403, and a refusal leaves nothing behind."""
import os
import pathlib
import shutil
import subprocess
import tempfile
import urllib.parse

import pytest


pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="giving files away needs root")


def q(path, **extra):
    return "?" + urllib.parse.urlencode({"path": path, **extra})


def owner(p):
    st = os.lstat(p)
    return st.st_uid, st.st_gid


def err(r, status, code):
    assert r.status == status, r
    body = r.json()
    assert body["code"] == code, body
    return body


def leftovers(d):
    found = []
    for root, dirs, files in os.walk(d):
        found += [os.path.join(root, f) for f in files + dirs if f.startswith(".sandbox-agent-")]
    return found


def curl(agent, *args, path=""):
    out = subprocess.run(["curl", "-sS", "-o", "-", "-w", "\n%{http_code}",
                          "-H", "Authorization: Bearer " + agent.token(), *args,
                          f"http://127.0.0.1:{agent.port}{path}"],
                         capture_output=True, timeout=60)
    assert out.returncode == 0, out.stderr
    body, _, code = out.stdout.rpartition(b"\n")
    return int(code), body


@pytest.fixture
def work(request):
    """A workdir every user can walk (pytest's base directory is 0700)."""
    base = tempfile.mkdtemp(prefix="sandbox-agent-fuser-")
    request.addfinalizer(lambda: shutil.rmtree(base, ignore_errors=True))
    os.chmod(base, 0o755)
    w = pathlib.Path(base) / "w"
    w.mkdir(mode=0o777)
    os.chmod(w, 0o777)
    return w


def test_write_as_nobody_owns_file_and_parents(start_agent, work):
    a = start_agent(workdir=str(work))
    r = a.post("/files/write", {"path": "p/q/f.txt", "content": "hi", "user": "nobody"})
    assert r.status == 200, r
    for p in ("p", "p/q", "p/q/f.txt"):
        assert owner(work / p) == (65534, 65534), p
    assert (work / "p/q/f.txt").read_text() == "hi"
    st = a.get("/files/stat" + q("p/q/f.txt")).json()
    assert st["owner"] == "nobody"
    # without user: the agent's own, as before
    assert a.post("/files/write", {"path": "p/q/g.txt", "content": "x"}).status == 200
    assert owner(work / "p/q/g.txt") == (0, 0)
    # a numeric uid, as a JSON number, that /etc/passwd does not know: itself, gid = uid
    r = a.post("/files/write", {"path": "n.txt", "content": "x", "user": 12345})
    assert r.status == 200, r
    assert owner(work / "n.txt") == (12345, 12345)
    assert leftovers(work) == []


def test_query_user_wins_and_set_id_mode_survives(start_agent, work):
    a = start_agent(workdir=str(work))
    r = a.post("/files/write" + "?user=12346", {"path": "s", "content": "#!/bin/sh\n",
                                                "mode": "4755", "user": "nobody"})
    assert r.status == 200, r
    assert owner(work / "s") == (12346, 12346)
    assert os.stat(work / "s").st_mode & 0o7777 == 0o4755


def test_uploads_take_query_user(start_agent, work, tmp_path):
    a = start_agent(workdir=str(work))
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(300000))
    code, body = curl(a, "--data-binary", "@" + str(src),
                      path="/files/upload" + q("raw/x.bin", user="nobody"))
    assert code == 200, body
    code, body = curl(a, "-T", str(src), path="/files/upload" + q("put/x.bin", user="65534"))
    assert code == 200, body
    # multipart with the file part before the path field: staged, then committed as nobody
    code, body = curl(a, "-F", "file=@" + str(src), "-F", "path=mp/x.bin",
                      path="/files/upload?user=nobody")
    assert code == 200, body
    for d in ("raw", "put", "mp"):
        assert owner(work / d) == (65534, 65534), d
        assert owner(work / d / "x.bin") == (65534, 65534), d
        assert (work / d / "x.bin").read_bytes() == src.read_bytes()
    assert leftovers(work) == []


def test_mkdir_and_move(start_agent, work):
    a = start_agent(workdir=str(work))
    r = a.post("/files/mkdir", {"path": "d1/d2", "user": "nobody"})
    assert r.status == 200 and r.json()["created"] is True, r
    assert owner(work / "d1") == owner(work / "d1/d2") == (65534, 65534)
    # an existing directory keeps its owner
    r = a.post("/files/mkdir?user=12345", {"path": "d1/d2"})
    assert r.status == 200 and r.json()["created"] is False, r
    assert owner(work / "d1/d2") == (65534, 65534)
    # a move keeps what moves; the parents it makes belong to `user`
    (work / "f").write_text("x")
    os.chown(work / "f", 12345, 12345)
    r = a.post("/files/move", {"from": "f", "to": "m1/m2/f", "user": "nobody"})
    assert r.status == 200, r
    assert owner(work / "m1/m2/f") == (12345, 12345)
    assert owner(work / "m1") == owner(work / "m1/m2") == (65534, 65534)
    assert leftovers(work) == []


def test_unknown_user_leaves_nothing(start_agent, work, tmp_path):
    a = start_agent(workdir=str(work))
    b = err(a.post("/files/write", {"path": "u/v/f", "content": "x", "user": "no-such-user"}),
            400, "INVALID_REQUEST")
    assert "no such user: no-such-user" in b["message"]
    err(a.post("/files/mkdir", {"path": "u/v", "user": "no-such-user"}), 400, "INVALID_REQUEST")
    err(a.post("/files/move", {"from": "x", "to": "u/v/x", "user": "no-such-user"}), 400,
        "INVALID_REQUEST")
    err(a.post("/files/write", {"path": "u/f", "content": "x", "user": ""}), 400,
        "INVALID_REQUEST")
    src = tmp_path / "src.bin"
    src.write_bytes(b"y" * 100000)
    code, body = curl(a, "--data-binary", "@" + str(src),
                      path="/files/upload" + q("u/v/f", user="no-such-user"))
    assert code == 400 and b"no such user" in body, body
    code, body = curl(a, "-F", "file=@" + str(src), "-F", "path=u/v/f",
                      path="/files/upload?user=no-such-user")
    assert code == 400 and b"no such user" in body, body
    assert os.listdir(work) == []
    assert a.alive()


def test_default_user(start_agent, work):
    a = start_agent("--default-user", "nobody", workdir=str(work))
    assert a.post("/files/write", {"path": "dd/f", "content": "x"}).status == 200
    assert owner(work / "dd") == owner(work / "dd/f") == (65534, 65534)
    # a request naming a user overrides the default
    assert a.post("/files/write", {"path": "r", "content": "x", "user": "root"}).status == 200
    assert owner(work / "r") == (0, 0)


def test_non_root_agent_cannot_give_files_away(start_agent, work):
    if not shutil.which("setpriv"):
        pytest.skip("needs setpriv to run the agent as nobody")
    os.chown(work, 65534, 65534)
    a = start_agent(workdir=str(work),
                    prefix=["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"])
    b = err(a.post("/files/write", {"path": "z/f", "content": "x", "user": "root"}), 403,
            "PERMISSION_DENIED")
    assert "not found" not in b["message"]
    err(a.post("/files/mkdir", {"path": "z/d", "user": "12345"}), 403, "PERMISSION_DENIED")
    code, body = curl(a, "--data-binary", "x", path="/files/upload" + q("z/u", user="0"))
    assert code == 403 and b"PERMISSION_DENIED" in body, body
    assert os.listdir(work) == []
    # naming itself is fine: nothing to give away
    assert a.post("/files/write", {"path": "me", "content": "x", "user": "nobody"}).status == 200
    assert owner(work / "me") == (65534, 65534)
