#!/bin/bash
# make bench: the agent measured beside its anchors (nginx, a bare spawn loop, `| cat`,
# tini-static) in one run on one machine; writes results.md, results.json and the SVG charts
# into build/bench/ (untracked), and publishes them into bench/ (tracked, what the README
# shows) only with PUBLISH=1. Never part of make test. Unattended, a few minutes.
# Usage: [PUBLISH=1] scripts/bench.sh BIN   (RUNS=3 DUR=3 BENCH_ONLY=http,spawn,... to change
# the run; BENCH_OUT=DIR to write elsewhere)
set -euo pipefail
bin=$(realpath "$1")
cd "$(dirname "$0")/.."

# the spawn anchor, built like the agent: musl, static
mkdir -p build
musl-gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static bench/spawn_anchor.c \
    -o build/spawn_anchor

# an unstripped -g build of the same sources for the perf profile in the report
srcs=$(ls ./*.c 2>/dev/null || true)   # SRCS in the Makefile: every top-level *.c
prof=build/sandbox-agent-prof
# shellcheck disable=SC2086
if ! musl-gcc -std=c11 -D_GNU_SOURCE -g -Os -fno-omit-frame-pointer -iquote . \
        -Ibuild/bearssl/src/inc -DAGENT_VERSION='"bench"' -DAGENT_BUILD='"prof"' -static \
        $srcs build/bearssl/src/build/libbearssl.a -o "$prof" -lm 2>/dev/null; then
    echo "bench: the -g build failed; no profile this run" >&2
    prof=
fi

# a copy: a make test elsewhere in the tree may relink build/sandbox-agent mid-run
mkdir -p build/bench
cp "$bin" build/bench/sandbox-agent

out=${BENCH_OUT:-build/bench}
mkdir -p "$out"
uptime >&2
bench/files.sh build/bench/sandbox-agent >&2 || echo "bench: the files part failed (bench/files.md not updated)" >&2
BENCH_OUT=$out BENCH_ANCHOR=build/spawn_anchor BENCH_PROF_BIN=$prof /usr/bin/python3 \
    bench/bench.py build/bench/sandbox-agent
BENCH_OUT=$out /usr/bin/python3 bench/term.py build/bench/sandbox-agent   # terminals: keystroke echo, RSS each (issue 15)
BENCH_OUT=$out /usr/bin/python3 bench/e2b.py build/bench/sandbox-agent || echo "bench: the E2B part failed" >&2   # E2B SDK vs HopX SDK; 1 GiB stream, agent RSS (issue 20)
if [ "${PUBLISH:-0}" = 1 ]; then
    for f in results.md results.json ratios.svg footprint.svg container.md e2b.md e2b.json; do
        if [ -e "$out/$f" ]; then cp "$out/$f" bench/; fi
    done
    echo "bench: published $out into bench/" >&2
else
    echo "bench: results in $out (make bench PUBLISH=1 copies them into bench/)" >&2
fi
