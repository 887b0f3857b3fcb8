#!/bin/sh
# Runs libFuzzer targets over their corpus, seeded from ../shared/testdata.
# Usage: test/fuzz/run.sh SECONDS TARGET...   (targets: FUZZ in the Makefile)
# Seeds are copied into build/fuzz/seeds/<t> at run time; the growing corpus lives in
# build/fuzz/corpus/<t>, crashes in build/fuzz/crashes/; nothing is written to the repo.
# Prints one summary line per target: "fuzz_<t>: N runs in S s, cov C ft F corp K, ok".
# FUZZ_NICE=1 runs the fuzzer under nice -n 19; FUZZ_TAG names the log (fuzz_<t>-TAG.log).
# Exit status non-zero on any finding.
set -u
secs=$1
shift
top=$(pwd)
b=$top/build/fuzz
shared=${SHARED_TESTDATA:-$top/../shared/testdata}
[ -d "$shared" ] || shared=""
mkdir -p "$b/crashes"
rc=0

seed_http() {
    [ -n "$shared" ] && cp "$shared"/http/http11probe/*.req "$shared"/http/llhttp/*.req \
        "$shared"/http/llhttp_hosted/*.req "$1"/ 2>/dev/null
    printf 'POST /execute HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\nGET / HTTP/1.1\r\n\r\n' >"$1/own-chunked"
}

seed_json() {
    [ -n "$shared" ] && cp "$shared"/json-test-suite/test_parsing/*.json "$1"/ 2>/dev/null
    printf '{"command":"echo hi","args":["a","b"],"env":{"K":"V\\u00e9\\ud83d\\ude00"},"timeout":1.5e1}' >"$1/own-request"
}

seed_jwt() {
    i=0
    if [ -n "$shared" ]; then
        { grep -oE 'eyJ[A-Za-z0-9_=-]*\.[A-Za-z0-9_=-]*\.[A-Za-z0-9_=-]*' "$shared"/jwt/jwt_rfc.txt
          cut -f6 "$shared"/jwt/wycheproof_hs256_index.tsv | grep '^eyJ'; } |
        while read -r t; do
            i=$((i + 1))
            printf '\000%s' "$t" >"$1/token-$i"
            printf '\004%s' "$t" >"$1/token-strict-$i"
        done
    fi
    printf '\001{"alg":"HS256","typ":"JWT"}\377{"exp":1800000000,"nbf":1,"iat":2,"aud":["x","api"],"sub":"user"}' >"$1/own-signed"
    printf '\002{"exp":1800000000,"aud":"api","sub":"user"}' >"$1/own-claims"
    printf '\006{"exp":1.7e9,"nbf":"x"}' >"$1/own-claims-strict"
}

seed_query() {
    printf '\100/execute/processes?status=running&name=a%%20b+c&output=false' >"$1/own-1"
    printf '\010http://h:1?offset=12&stream=stderr&&=&%%73tatus=%%ff' >"$1/own-2"
    printf '\377/x/%%e2%%82%%ac?name=%%00&name=ok' >"$1/own-3"
}

for t in "$@"; do
    bin=$b/fuzz_$t
    [ -x "$bin" ] || { echo "fuzz_$t: not built"; rc=1; continue; }
    rm -rf "$b/seeds/$t"
    mkdir -p "$b/seeds/$t" "$b/corpus/$t"
    # built-in seeds above, or a target's own seed files in test/fuzz/seeds/<t>/
    if command -v "seed_$t" >/dev/null 2>&1; then seed_$t "$b/seeds/$t"; fi
    [ -d "$top/test/fuzz/seeds/$t" ] && cp "$top/test/fuzz/seeds/$t"/* "$b/seeds/$t"/ 2>/dev/null
    opts="-max_len=65536"
    [ -f "$top/test/fuzz/$t.dict" ] && opts="$opts -dict=$top/test/fuzz/$t.dict"
    case $t in
        http) opts="-max_len=20000 -dict=$top/test/fuzz/http.dict" ;;
        json) opts="-max_len=16384 -dict=$top/test/fuzz/json.dict" ;;
        jwt) opts="-max_len=4097 -dict=$top/test/fuzz/jwt.dict" ;;
        query) opts="-max_len=4096" ;;
    esac
    nice=""
    [ "${FUZZ_NICE:-0}" = 1 ] && nice="nice -n 19"
    log=$b/fuzz_$t${FUZZ_TAG:+-$FUZZ_TAG}.log   # a smoke run beside a long one keeps its own
    start=$(date +%s)
    # shellcheck disable=SC2086
    $nice "$bin" $opts -max_total_time="$secs" -timeout=60 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$b/crashes/$t-" \
        "$b/corpus/$t" "$b/seeds/$t" >"$log" 2>&1
    frc=$?
    end=$(date +%s)
    runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log" | tail -n 1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -n 1)
    cov=$(printf '%s' "$last" | sed -nE 's/.* cov: ([0-9]+).*/\1/p')
    ft=$(printf '%s' "$last" | sed -nE 's/.* ft: ([0-9]+).*/\1/p')
    corp=$(printf '%s' "$last" | sed -nE 's/.* corp: ([0-9]+).*/\1/p')
    if [ $frc -eq 0 ]; then verdict=ok; else verdict="FINDING (see $log)"; rc=1; fi
    echo "fuzz_$t: ${runs:-?} runs in $((end - start)) s, cov ${cov:-?} ft ${ft:-?} corp ${corp:-?}, $verdict"
    [ $frc -eq 0 ] || grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$log" | head -n 8
done
exit $rc
