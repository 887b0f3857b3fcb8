"""Webhook receivers for the tests: real HTTP(S) servers on loopback that record what they
get, answer a scripted list of statuses, or never answer; a CA made by openssl at test time."""
import hashlib
import hmac
import os
import socket
import ssl
import subprocess
import threading
import time


class Receiver:
    """An HTTP/1.1 server on (host, port 0) in a thread. statuses: what to answer, in order
    (the last one repeats); hang=True: accept, read the request, never answer."""

    def __init__(self, host="127.0.0.1", statuses=(200,), hang=False, tls=None, chunked=False):
        self.statuses = list(statuses)
        self.hang = hang
        self.chunked = chunked
        self.requests = []            # (headers dict lowercased, body bytes, monotonic time)
        self.cond = threading.Condition()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(128)
        self.host, self.port = self.sock.getsockname()[:2]
        self.tls = tls
        self.closing = False
        self.held = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def url(self, host=None, path="/hook"):
        scheme = "https" if self.tls else "http"
        host = host or (f"[{self.host}]" if ":" in self.host else self.host)
        return f"{scheme}://{host}:{self.port}{path}"

    def _serve(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn):
        try:
            conn.settimeout(30)
            if self.tls:
                try:
                    conn = self.tls.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    conn.close()
                    return
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    conn.close()
                    return
                data += chunk
            head, body = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = {"_request_line": lines[0]}
            for line in lines[1:]:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
            n = int(headers.get("content-length", "0"))
            while len(body) < n:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                body += chunk
            with self.cond:
                self.requests.append((headers, body, time.monotonic()))
                status = self.statuses[min(len(self.requests) - 1, len(self.statuses) - 1)]
                self.cond.notify_all()
            if self.hang:
                self.held.append(conn)   # never answered, closed at the end
                return
            msg = b'{"ok":true}'
            if self.chunked:
                resp = (f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n"
                        f"{len(msg):x}\r\n").encode() + msg + b"\r\n0\r\n\r\n"
            else:
                resp = (f"HTTP/1.1 {status} X\r\nContent-Length: {len(msg)}\r\n"
                        "Connection: close\r\n\r\n").encode() + msg
            conn.sendall(resp)
            conn.close()
        except OSError:
            pass

    def wait(self, count=1, timeout=30):
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.requests) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(self.requests)} of {count} webhooks after {timeout}s"
                self.cond.wait(left)
            return self.requests[:count]

    def close(self):
        self.closing = True
        try:   # wakes the accept() of the serving thread: a closed fd alone does not, and
            self.sock.shutdown(socket.SHUT_RDWR)   # the old socket would keep its port
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)
        for c in self.held:
            try:
                c.close()
            except OSError:
                pass


def signature(secret, ts, body):
    """What a receiver checks: HMAC-SHA256 over the timestamp followed by the raw body."""
    if isinstance(secret, str):
        secret = secret.encode()
    return "sha256=" + hmac.new(secret, ts.encode() + body, hashlib.sha256).hexdigest()


class CA:
    """A throwaway CA made with openssl, and server certificates signed by it."""

    def __init__(self, d):
        self.d = str(d)
        os.makedirs(self.d, exist_ok=True)
        self.pem = os.path.join(self.d, "ca.pem")
        self.key = os.path.join(self.d, "ca.key")
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                  "-out", self.pem, "-days", "2", "-subj", "/CN=sandbox-agent test CA",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _run(self, *args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    def server(self, name, san, ec=True):
        """A server certificate for san ("DNS:localhost,IP:127.0.0.1"); returns an
        ssl.SSLContext serving it."""
        key = os.path.join(self.d, f"{name}.key")
        csr = os.path.join(self.d, f"{name}.csr")
        crt = os.path.join(self.d, f"{name}.pem")
        ext = os.path.join(self.d, f"{name}.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if ec else \
            ["-newkey", "rsa:2048"]
        self._run("req", *newkey, "-nodes", "-keyout", key, "-out", csr, "-subj", f"/CN={name}")
        self._run("x509", "-req", "-in", csr, "-CA", self.pem, "-CAkey", self.key,
                  "-CAcreateserial", "-out", crt, "-days", "2", "-extfile", ext)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        return ctx
