"""A field line that dooms a request is answered as soon as it is in (issue 12 item 6), with
the connection still open and no blank line sent, as llhttp and nginx do."""
import socket

import pytest

from conftest import read_response

DOOMED = [
    b"PUT /url HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
    b"PUT /url HTTP/1.1\r\nHost: a\r\nContent-Length: 1000000000000000000000\r\n",
    b"PUT /url HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n",
    b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n",
    b"GET / HTTP/1.1\r\nHost: user@a\r\n",
    b"GET / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n",
    b"GET /x HTTP/1.1\r\nBad Header: x\r\n",   # the parser's own refusals were early already
]


@pytest.mark.parametrize("head", DOOMED, ids=range(len(DOOMED)))
def test_doomed_line_is_answered_at_once(agent, head):
    with agent.connect(timeout=10) as s:
        s.sendall(head + b"X-More: coming")   # never finished: no half-close, no blank line
        r = read_response(s)
        assert r is not None and r.status == 400, r
        assert r.header("connection") == "close"
        assert r.json()["code"] == "INVALID_REQUEST"
    assert agent.alive()


def test_fine_prefix_waits(agent):
    """Nothing wrong yet (a missing Host may still come, gzip may be refused only at the
    end): the agent waits for the rest, then answers the whole request."""
    with agent.connect(timeout=10) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nExpect: 100-continue\r\n")
        s.settimeout(0.3)
        with pytest.raises(socket.timeout):
            s.recv(100)
        s.settimeout(10)
        s.sendall(b"Host: a\r\n\r\n")
        r = read_response(s)
        assert r.status == 200, r
