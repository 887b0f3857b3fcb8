#!/bin/bash
# make bench, container figures: `podman run` to the first /health answer and `podman stop`
# (SIGTERM to the agent as PID 1) to exit, with the image of make image. An anchor on the same
# machine: `podman run --rm` of busybox `true` from the same image, the engine's own cost.
# Medians (and min / max) of RUNS runs; writes bench/container.md. Never part of make test.
# Usage: bench/container.sh [AGENT_BIN]
set -euo pipefail
bin=${1:-build/sandbox-agent}
RUNS=${RUNS:-7}
tag=localhost/sandbox-agent:bench-$$
out=${OUT:-bench/container.md}
run=(podman run --runtime runc --ulimit nofile=4096:4096 --ulimit nproc=4096:4096)
names=()
cleanup() {
    for n in "${names[@]}"; do podman rm -f -t 0 "$n" >/dev/null 2>&1 || true; done
    podman rmi -f "$tag" >/dev/null 2>&1 || true
}
trap cleanup EXIT

port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
stats() { sort -n | awk '{a[NR]=$1} END {printf "%d ms (%d / %d)", a[int((NR+1)/2)], a[1], a[NR]}'; }

built=$(IMAGE=$tag ROOTFS=build/rootfs-bench scripts/image.sh "$bin")
size=$(podman image inspect --format '{{.Size}}' "$tag")
secret=bench-secret-$$
token=$(SANDBOX_AGENT_JWT_SECRET=$secret "$bin" token --ttl 600)

: > /tmp/sa-bench-$$.start; : > /tmp/sa-bench-$$.stop; : > /tmp/sa-bench-$$.busy; : > /tmp/sa-bench-$$.true; : > /tmp/sa-bench-$$.own
for i in $(seq "$RUNS"); do
    # engine anchor: create, start and reap a container that does nothing
    t0=$(now_ms); "${run[@]}" --rm --entrypoint /bin/true "$tag"; t1=$(now_ms)
    echo $((t1 - t0)) >> /tmp/sa-bench-$$.true

    for kind in idle busy; do
        name=sa-bench-$$-$kind-$i; names+=("$name"); p=$(port)
        t0=$(now_ms)
        "${run[@]}" -d --name "$name" -p 127.0.0.1:$p:7777 -e SANDBOX_AGENT_JWT_SECRET=$secret \
            "$tag" >/dev/null
        until curl -sf -o /dev/null --max-time 1 "http://127.0.0.1:$p/health"; do sleep 0.005; done
        t1=$(now_ms)
        [ $kind = idle ] && echo $((t1 - t0)) >> /tmp/sa-bench-$$.start
        if [ $kind = busy ]; then   # ten children that end on SIGTERM, one orphan
            for j in $(seq 10); do
                curl -sf -o /dev/null -H "Authorization: Bearer $token" \
                    "http://127.0.0.1:$p/commands/background" -d '{"command":"sleep 300"}'
            done
            curl -sf -o /dev/null -H "Authorization: Bearer $token" \
                "http://127.0.0.1:$p/commands/run" -d '{"command":"setsid sh -c \"sleep 300 &\""}'
        fi
        t2=$(now_ms); podman stop -t 10 "$name" >/dev/null; t3=$(now_ms)
        code=$(podman inspect --format '{{.State.ExitCode}}' "$name")
        [ "$code" = 0 ] || { echo "container.sh: $name exited $code" >&2; exit 1; }
        echo $((t3 - t2)) >> /tmp/sa-bench-$$.$([ $kind = idle ] && echo stop || echo busy)
        # the agent's own share: its log from the SIGTERM to the exit line
        [ $kind = busy ] && podman logs "$name" 2>&1 | awk -F'[ =]' '
            function ms(t) { split(substr(t, 12, 12), a, ":"); return ((a[1] * 60 + a[2]) * 60 + a[3]) * 1000 }
            /event=signal signal=SIGTERM/ { s = ms($2) } /event=stopped/ { printf "%d\n", ms($2) - s }' \
            >> /tmp/sa-bench-$$.own
        podman rm -f -t 0 "$name" >/dev/null
    done
done

{
    echo "## Container: the agent as PID 1 (podman $(podman version --format '{{.Client.Version}}'), runc)"
    echo
    echo "Image: $size bytes ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB), FROM scratch: static agent + static busybox."
    echo "Medians of $RUNS runs (min / max); $(nproc) cores, $(uname -r)."
    echo
    echo "| measure | time |"
    echo "|---|---|"
    echo "| \`podman run -d\` to first \`/health\` answer | $(stats < /tmp/sa-bench-$$.start) |"
    echo "| \`podman stop\` to exit, idle agent | $(stats < /tmp/sa-bench-$$.stop) |"
    echo "| \`podman stop\` to exit, 10 children + 1 orphan (all end on SIGTERM) | $(stats < /tmp/sa-bench-$$.busy) |"
    echo "| of which the agent's own shutdown (its log: SIGTERM to exit), busy | $(stats < /tmp/sa-bench-$$.own) |"
    echo "| anchor: \`podman run --rm\` of busybox \`true\` (engine cost alone) | $(stats < /tmp/sa-bench-$$.true) |"
} | tee "$out"
rm -f /tmp/sa-bench-$$.* ; rm -rf build/rootfs-bench
echo "$built"
