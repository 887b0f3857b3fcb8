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
musl-gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static bench/drain_anchor.c \
    -o build/drain_anchor

# an unstripped -g build of the same sources for the perf profile in the report
srcs=$(ls ./*.c 2>/dev/null || true)   # SRCS in the Makefile: every top-level *.c
prof=build/sandbox-agent-prof
# shellcheck disable=SC2086
if ! musl-gcc -std=c11 -D_GNU_SOURCE -g -Os -fno-omit-frame-pointer -iquote . -isystem build/kheaders \
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
# each feature's part: one line each, "BENCH_ONLY=a,b" runs only those parts
part() {   # $1 name, then the command
    name=$1
    shift
    case ",${BENCH_ONLY:-$name}," in *,"$name",*) "$@" >&2 || echo "bench: $name part failed" >&2 ;; esac
}
part hooks env BENCH_OUT="$out" /usr/bin/python3 bench/hooks.py build/bench/sandbox-agent     # issue 16
part ipython env BENCH_OUT="$out" /usr/bin/python3 bench/ipython.py build/bench/sandbox-agent # issue 19
part files env BENCH_OUT="$out" bench/files.sh build/bench/sandbox-agent                      # issue 13
part e2b env BENCH_OUT="$out" /usr/bin/python3 bench/e2b.py build/bench/sandbox-agent         # issue 20: E2B SDK vs HopX SDK, 1 GiB stream
part term env BENCH_OUT="$out" /usr/bin/python3 bench/term.py build/bench/sandbox-agent       # issue 15: keystroke echo, RSS per terminal
part vm env BENCH_OUT="$out" /usr/bin/python3 bench/vm.py build/bench/sandbox-agent          # issue 17/18
BENCH_OUT=$out BENCH_ANCHOR=build/spawn_anchor BENCH_DRAIN=build/drain_anchor BENCH_PROF_BIN=$prof /usr/bin/python3 \
    bench/bench.py build/bench/sandbox-agent
part streams /usr/bin/python3 bench/streams.py build/bench/sandbox-agent "$out"      # issue 14
if [ "${PUBLISH:-0}" = 1 ]; then
    # every page a part wrote (results, charts, container.md, hooks.md, files.md...)
    for f in "$out"/*.md "$out"/*.json "$out"/*.svg; do
        if [ -e "$f" ]; then cp "$f" bench/; fi
    done
    echo "bench: published $out into bench/" >&2
else
    echo "bench: results in $out (make bench PUBLISH=1 copies them into bench/)" >&2
fi
