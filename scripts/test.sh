#!/bin/sh
# make test: unit tests (built with ASan+UBSan), a few seconds of each fuzz target, then the
# integration tests against the binary and again against its ASan+UBSan build.
# Ends with one line: "N passed, N failed, N skipped".
set -u
bin=$1
shift
top=$(pwd)
if [ -d "$top/../shared/testdata" ]; then
    SHARED_TESTDATA=$(cd "$top/../shared/testdata" && pwd)
    export SHARED_TESTDATA
else
    echo "NOTE: ../shared/testdata is absent: third-party vector tests are skipped"
    unset SHARED_TESTDATA
fi
export AGENT_BIN="$top/$bin"
passed=0 failed=0 skipped=0

count() {   # adds "name: P passed, F failed, S skipped" from $1 to the totals
    line=$(printf '%s\n' "$1" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
    p=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) passed.*/\1/')
    f=$(printf '%s' "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
    s=$(printf '%s' "$line" | sed -nE 's/.* ([0-9]+) skipped.*/\1/p')
    if [ -z "$line" ]; then f=1; p=0; fi
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + ${s:-0}))
}

for u in "$@"; do
    out=$(ASAN_OPTIONS=detect_leaks=1 build/unit/test_$u 2>&1)
    rc=$?
    printf '%s\n' "$out" | grep -E '^(FAIL|SKIP)|passed' | head -n 40
    [ $rc -eq 0 ] || printf '%s\n' "$out" | tail -n 20
    count "$out"
    [ $rc -eq 0 ] || [ -n "$(printf '%s' "$out" | grep -E ' [1-9][0-9]* failed')" ] || failed=$((failed + 1))
done

# Fuzz smoke: each libFuzzer target a few seconds over its corpus (make fuzz runs long).
if [ -x build/fuzz/fuzz_http ]; then
    fz=$(FUZZ_TAG=smoke test/fuzz/run.sh "${FUZZ_SMOKE_S:-5}" ${FUZZ_TARGETS:-http json jwt query} 2>&1)
    printf '%s\n' "$fz"
    fp=$(printf '%s\n' "$fz" | grep -c '^fuzz_.*, ok$')
    ff=$(printf '%s\n' "$fz" | grep -c '^fuzz_')
    passed=$((passed + fp)); failed=$((failed + ff - fp))
fi

# The integration suite runs twice: against the binary, then against its ASan+UBSan build
# (tests marked "once" skip there; a sanitizer report in an agent log fails the test).
integration() {   # $1 label, $2 binary, then NAME=VALUE settings for the run
    label=$1 ibin=$2
    shift 2
    junit=build/pytest-$label.xml
    rm -f "$junit"
    env AGENT_BIN="$top/$ibin" "$@" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        --junitxml="$junit" test/integration >"build/pytest-$label.log" 2>&1
    rc=$?
    tail -n 30 "build/pytest-$label.log"
    if [ -f "$junit" ]; then
        eval "$(/usr/bin/python3 - "$junit" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
t, f, e, k = (int(s.get(x, 0)) for x in ("tests", "failures", "errors", "skipped"))
print(f"pp={t - f - e - k} pf={f + e} ps={k}")
PY
)"
        passed=$((passed + pp)); failed=$((failed + pf)); skipped=$((skipped + ps))
        echo "integration ($label): $pp passed, $pf failed, $ps skipped"
    elif [ $rc -ne 0 ]; then
        failed=$((failed + 1))
    fi
}
# the plain pass also runs the valgrind scenario (test_hostile) on the glibc -g build
debug=${bin%/*}/debug/sandbox-agent
if [ -x "$debug" ] && command -v valgrind >/dev/null; then
    integration plain "$bin" AGENT_DEBUG_BIN="$top/$debug"
else
    integration plain "$bin"
fi
asan=${bin%/*}/asan/sandbox-agent
if [ -x "$asan" ]; then
    integration asan "$asan" AGENT_SANITIZED=1 \
        ASAN_OPTIONS=abort_on_error=1:halt_on_error=1:detect_leaks=1 \
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
else
    echo "NOTE: $asan missing: the sanitizer pass of the integration suite is skipped"
    skipped=$((skipped + 1))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
