"""HopX's POST /files/upload with Content-Encoding: gzip: inflated on the way to the file
(inflate.c), bounded by --gzip-limit (413, nothing left); corrupt gzip 400; other encodings
415 (never stored encoded as if they were the file). E2B's /files: test_e2b.py."""
import gzip
import json
import os

from test_files import curl, leftovers, q


def test_hopx_upload_gzip(start_agent, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    a = start_agent("--gzip-limit", "2m", workdir=str(work))
    data = os.urandom(200000) + b"gzip " * 100000
    src = tmp_path / "d.gz"
    src.write_bytes(gzip.compress(data))
    code, body = curl(a, "-H", "Content-Encoding: gzip", "--data-binary", f"@{src}",
                      path="/files/upload" + q("gz/raw.bin"))
    assert code == 200 and json.loads(body)["size"] == len(data), body
    assert (work / "gz/raw.bin").read_bytes() == data
    # multipart inside gzip, chunked
    mp = (b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x\"\r\n\r\n" +
          b"in a part" + b"\r\n--B--\r\n")
    (tmp_path / "mp.gz").write_bytes(gzip.compress(mp))
    code, body = curl(a, "-H", "Content-Encoding: gzip", "-H", "Transfer-Encoding: chunked",
                      "-H", "Content-Type: multipart/form-data; boundary=B",
                      "--data-binary", f"@{tmp_path}/mp.gz", path="/files/upload" + q("gz/mp.txt"))
    assert code == 200, body
    assert (work / "gz/mp.txt").read_bytes() == b"in a part"
    # a bomb past --gzip-limit, corrupt streams, other encodings: refused, no file
    (tmp_path / "bomb.gz").write_bytes(gzip.compress(b"\0" * (16 << 20)))
    good = gzip.compress(b"fine\n" * 1000)
    (tmp_path / "crc.gz").write_bytes(good[:-8] + bytes([good[-8] ^ 1]) + good[-7:])
    (tmp_path / "cut.gz").write_bytes(good[:len(good) // 2])
    for name, enc, status, code_ in [("bomb.gz", "gzip", 413, "PAYLOAD_TOO_LARGE"),
                                     ("crc.gz", "gzip", 400, "INVALID_REQUEST"),
                                     ("cut.gz", "gzip", 400, "INVALID_REQUEST"),
                                     ("crc.gz", "br", 415, "UNSUPPORTED_MEDIA_TYPE")]:
        code, body = curl(a, "-H", f"Content-Encoding: {enc}", "--data-binary",
                          f"@{tmp_path}/{name}", path="/files/upload" + q(f"no/{name}"))
        assert code == status and json.loads(body)["code"] == code_, (name, body)
        assert not (work / "no" / name).exists(), name
    assert leftovers(str(work)) == []
