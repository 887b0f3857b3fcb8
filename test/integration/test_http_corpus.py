"""Replays the HTTP/1.1 request corpus (llhttp + Http11Probe, RFC 9112 verdicts in
../shared/testdata/http/cases.tsv) against the running binary.

Verdicts are at server level:
  accept      every request gets an answer that is not a parse rejection (404/405/401 are
              fine: the request was understood, the path just is not ours)
  reject      a 4xx/5xx framing answer (400, 408, 411, 413, 414, 417, 431, 501, 505): a close
              without an answer is not enough (a field line that dooms the request is
              answered as soon as it is in, even when the blank line never comes, as
              llhttp and nginx do: llhttp-content-length-0077/-0102 end there)
  incomplete  the agent waits: no answer before we give up, and never a 2xx
  either      anything, as long as the agent stays up
"""
import csv
import os
import socket
import time

import pytest

from conftest import SHARED

REJECTS = {400, 408, 411, 413, 414, 417, 431, 501, 505}


def load_cases():
    if not SHARED:
        return []
    path = os.path.join(SHARED, "http", "cases.tsv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [pytest.param(r, id=r["name"]) for r in rows]


CASES = load_cases()


def statuses_in(data):
    return [int(line[9:12]) for line in data.split(b"\r\n")
            if line.startswith(b"HTTP/1.1 ") and line[9:12].isdigit()]


def exchange(agent, parts, wait, half_close):
    """Sends each part (pausing between them) and reads until the agent closes, or goes
    quiet after answering, or `wait` passes. Then, with half_close, ends our side (EOF)
    and waits for the agent to close too. Returns (statuses, closed)."""
    data, closed = b"", False
    with agent.connect(timeout=wait) as s:
        for i, part in enumerate(parts):
            try:
                s.sendall(part)
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            if i + 1 < len(parts):
                time.sleep(0.1)
        deadline = time.monotonic() + wait
        s.settimeout(0.2)
        while not closed and time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                if statuses_in(data):
                    break   # answered and quiet: a keep-alive connection waiting for more
                continue
            except ConnectionResetError:
                closed = True
                break
            if not chunk:
                closed = True
            data += chunk
        if half_close and not closed:
            s.shutdown(socket.SHUT_WR)
            s.settimeout(10)   # the agent closes at once; a generous bound for a busy machine
            try:
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        closed = True
                        break
                    data += chunk
            except (socket.timeout, ConnectionResetError):
                closed = True
    return statuses_in(data), closed


@pytest.mark.skipif(not SHARED, reason="../shared/testdata is absent: HTTP corpus skipped")
@pytest.mark.parametrize("case", CASES)
def test_corpus(agent, case):
    base = os.path.join(SHARED, "http")
    parts = [open(os.path.join(base, p.strip()), "rb").read() for p in case["file"].split("+")]
    verdict = case["expected"]
    # reject/incomplete: a request cut short is waited for; at EOF the agent must close
    # wait: how long to wait for an answer before giving up (or half-closing). An answer
    # ends the wait early, so accept/either cases get a bound generous for a busy machine;
    # incomplete ones must stay unanswered, and a reject may be answered only at our EOF.
    wait = {"incomplete": 0.6, "reject": 1.5}.get(verdict, 10)
    statuses, closed = exchange(agent, parts, wait=wait,
                                half_close=verdict in ("reject", "incomplete"))
    finals = [s for s in statuses if s != 100]
    if verdict == "accept":
        assert finals, f"no answer; note: {case['note']}"
        assert not (set(finals) & REJECTS), f"{finals}; note: {case['note']}"
    elif verdict == "reject":
        assert set(finals) & REJECTS, f"{finals} closed={closed}; note: {case['note']}"
        assert not (finals and 200 <= finals[0] < 300 and not (set(finals) & REJECTS)), f"{finals}"
    elif verdict == "incomplete":
        assert not any(200 <= s < 300 for s in finals), f"{finals}; note: {case['note']}"
        assert not finals or set(finals) <= {408, 400, 413}, f"{finals}"
        assert closed, "the agent must close at EOF of an unfinished request"
    assert agent.alive(), "agent died"


@pytest.mark.skipif(SHARED is not None, reason="corpus present")
def test_corpus_absent_is_reported():
    pytest.skip("../shared/testdata is absent: the HTTP corpus cases are skipped")
