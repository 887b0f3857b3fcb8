"""Spawning (proc.c): a burst of queued starts is spread over loop rounds
(LIMIT_STARTS_PER_ROUND between two polls) and keeps the queue's order and --max-running."""
from conftest import start, wait_done


def test_a_queued_burst_starts_in_order_within_max_running(start_agent):
    a = start_agent("--max-running", "4")
    first = [start(a, {"command": "sleep 1"}) for _ in range(4)]
    assert [p["status"] for p in first] == ["running"] * 4
    # each queued record writes how many of the burst run beside it (never past the bound)
    queued = [start(a, {"command": f"echo {i}; ps -e -o args | grep -c '^sleep 0.2137$'; sleep 0.2137"})
              for i in range(16)]
    assert all(p["status"] == "queued" for p in queued), queued
    recs = [wait_done(a, p["process_id"], timeout=60) for p in first + queued]
    assert all(r["status"] == "completed" for r in recs), recs
    burst = recs[4:]
    for i, r in enumerate(burst):
        out = r["stdout"].split()
        assert out[0] == str(i) and int(out[1]) <= 3, r   # at most 3 others of the burst
    starts = [r["started_at"] for r in burst]
    assert starts == sorted(starts), starts             # oldest first
    assert burst[0]["started_at"] >= min(r["completed_at"] for r in recs[:4])[:-5]
    assert a.get("/health").status == 200
