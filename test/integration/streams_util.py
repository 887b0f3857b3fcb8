"""Helpers for the live-stream tests: a raw WebSocket client (for hostile frames), an SSE
reader over a plain socket, and RSS of the agent."""
import base64
import json
import os
import socket
import struct
import time

from conftest import read_response, _pending

KEY = base64.b64encode(b"0123456789abcdef").decode()


def upgrade(agent, path, extra=None, timeout=10):
    """Opens a WebSocket with a raw socket. Returns (sock, response, leftover bytes)."""
    s = agent.connect(timeout)
    h = {"Host": "localhost", "Upgrade": "websocket", "Connection": "Upgrade",
         "Sec-WebSocket-Key": KEY, "Sec-WebSocket-Version": "13",
         "Authorization": "Bearer " + agent.token()}
    h.update(extra or {})
    req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None) + "\r\n"
    s.sendall(req.encode())
    r = read_response(s, head_only=True)
    return s, r, _pending.pop(s.fileno(), b"")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """A client frame; length overrides the announced length (hostile)."""
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    m = 0x80 if mask else 0
    if n < 126:
        head = bytes([b0, m | n])
    elif n < 65536:
        head = bytes([b0, m | 126]) + struct.pack(">H", n)
    else:
        head = bytes([b0, m | 127]) + struct.pack(">Q", n)
    if not mask:
        return head + payload
    key = b"\x11\x22\x33\x44"
    return head + key + bytes(c ^ key[i % 4] for i, c in enumerate(payload))


class FrameReader:
    """Reads server frames (unmasked) from a socket."""

    def __init__(self, sock, leftover=b""):
        self.s, self.buf = sock, leftover

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError
            self.buf += chunk

    def read(self):
        """(opcode, payload, fin) of the next frame; EOFError when the peer closed."""
        self._need(2)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "server frames are never masked"
        n, h = b1 & 127, 2
        if n == 126:
            self._need(4)
            n, h = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, h = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(h + n)
        payload = self.buf[h:h + n]
        self.buf = self.buf[h + n:]
        return b0 & 15, payload, bool(b0 & 0x80)

    def until_close(self):
        """Data messages (decoded JSON where possible) up to the close frame; returns
        (messages, close code or None)."""
        msgs = []
        while True:
            try:
                op, p, _ = self.read()
            except (EOFError, ConnectionResetError):
                return msgs, None
            if op == 8:
                return msgs, struct.unpack(">H", p[:2])[0] if len(p) >= 2 else 1005
            if op in (1, 2):
                try:
                    msgs.append(json.loads(p))
                except ValueError:
                    msgs.append(p)


def eof_after(sock, timeout=5):
    """True when the peer closes the connection (after anything it still sends)."""
    sock.settimeout(timeout)
    try:
        while sock.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def sse_events(stream):
    """Parses SSE text into a list of dicts {id, event, data (JSON), comment}."""
    out = []
    for block in stream.split("\n\n"):
        if not block.strip():
            continue
        ev = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                ev["comment"] = line[1:].strip()
                continue
            k, _, v = line.partition(": ")
            ev[k] = json.loads(v) if k == "data" else v
        out.append(ev)
    return out


class SSEReader:
    """GET .../stream over a raw socket, read incrementally."""

    def __init__(self, agent, path, headers=None, timeout=20):
        self.s = agent.connect(timeout)
        h = {"Host": "localhost", "Authorization": "Bearer " + agent.token()}
        h.update(headers or {})
        req = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
        self.s.sendall(req.encode())
        self.resp = read_response(self.s, head_only=True)
        self.buf = _pending.pop(self.s.fileno(), b"").decode()

    def next(self):
        """The next event dict, or None at the end of the stream."""
        while "\n\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                return None
            self.buf += chunk.decode()
        block, self.buf = self.buf.split("\n\n", 1)
        ev = sse_events(block + "\n\n")
        return ev[0] if ev else self.next()

    def close(self):
        self.s.close()


def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def poll_until(fn, timeout=30, every=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(every)
