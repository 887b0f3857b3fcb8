#!/bin/sh
# Source coverage of each parser by the fuzz corpus (build/fuzz/corpus/<t>): the targets
# rebuilt with clang's coverage mapping, replayed once over their corpus (no fuzzing), and
# llvm-cov's region/function/line/branch figures per module (http.c: fuzz_http and
# fuzz_query together). Usage: test/fuzz/cov.sh   (from the top directory, after make fuzz)
set -eu
b=build/fuzz/cov
rm -rf "$b"
mkdir -p "$b"
inc="-iquote . -Ibuild/bearssl/src/inc"
for t in http query json jwt; do
    [ -d "build/fuzz/corpus/$t" ] || { echo "cov: no corpus for $t (run make fuzz)"; exit 1; }
    case $t in
        http|query) srcs="http.c" ;;
        json) srcs="json.c buf.c -lm" ;;
        jwt) srcs="jwt.c json.c buf.c build/bearssl/src/build/libbearssl.a -lm" ;;
    esac
    # shellcheck disable=SC2086
    clang -std=c11 -D_GNU_SOURCE -g -O0 $inc -fsanitize=fuzzer -fprofile-instr-generate \
        -fcoverage-mapping "test/fuzz/fuzz_$t.c" $srcs -o "$b/fuzz_$t"
    LLVM_PROFILE_FILE="$b/$t.profraw" "$b/fuzz_$t" -runs=0 "build/fuzz/corpus/$t" >/dev/null 2>&1
done
report() {   # module, targets...
    mod=$1
    shift
    objs="" raws=""
    for t in "$@"; do
        objs="$objs${objs:+ -object }$b/fuzz_$t"
        raws="$raws $b/$t.profraw"
    done
    # shellcheck disable=SC2086
    llvm-profdata merge -sparse $raws -o "$b/$mod.profdata"
    # shellcheck disable=SC2086
    llvm-cov report $objs -instr-profile="$b/$mod.profdata" "$mod" |
        awk -v m="$mod" -v by="$(echo "$*" | sed "s/ /+fuzz_/g")" '$1 ~ ("/" m "$") {
            print m " by fuzz_" by ": regions " $4 ", functions " $7 ", lines " $10 ", branches " $13 }'
}
report http.c http query
report json.c json
report jwt.c jwt
