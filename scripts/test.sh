#!/bin/sh
# make test: unit tests (built with ASan+UBSan), then integration tests against the binary.
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

junit=build/pytest.xml
rm -f "$junit"
/usr/bin/python3 -m pytest -q -p no:cacheprovider --junitxml="$junit" test/integration >build/pytest.log 2>&1
rc=$?
tail -n 30 build/pytest.log
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
    echo "integration: $pp passed, $pf failed, $ps skipped"
elif [ $rc -ne 0 ]; then
    failed=$((failed + 1))
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
