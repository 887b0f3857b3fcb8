#!/bin/sh
# make bench, files part: downloads vs one nginx worker with sendfile, uploads (raw and
# multipart) vs bench/upload_anchor.c, the agent's RSS while they run and while 20 uploads
# run at once, and a 10 000-entry listing. Writes bench/files.md. Called by scripts/bench.sh;
# alone: bench/files.sh BIN   (SIZE_MIB=512 RUNS=3 to change the run)
set -eu
bin=$(realpath "$1")
cd "$(dirname "$0")/.."
mkdir -p build
musl-gcc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -static bench/upload_anchor.c \
    -o build/upload_anchor
exec /usr/bin/python3 bench/files.py "$bin" build/upload_anchor
