#!/bin/sh
# Builds BearSSL from Debian's source package with musl-gcc into $1 (build/bearssl).
# Debian's own libbearssl.a is compiled against glibc (__memcpy_chk), so it cannot link
# into a static musl binary. Only objects the agent uses are pulled in by the linker.
# The Makefile reruns this when it changes (new flags): a source tree already unpacked in $1
# is rebuilt in place rather than fetched again.
set -eu
dest=$1
if [ -f "$dest/src/Makefile" ]; then
    make -s -C "$dest/src" clean >/dev/null
    cd "$dest"
else
    rm -rf "$dest"
    mkdir -p "$dest"
    cd "$dest"
    apt-get source -qq bearssl >/dev/null 2>&1 || {
        echo "bearssl.sh: 'apt-get source bearssl' failed (deb-src missing? run scripts/deps.sh)" >&2
        exit 1
    }
    src=$(ls -d bearssl-*/ | head -n 1)
    mv "$src" src
fi
# -fPIC is dropped and -Os kept: the objects go into a static, size-conscious binary. No
# unwind tables, as for the agent's own objects: C never unwinds, and BearSSL's .eh_frame
# was 9.5 KB of the stripped binary.
make -s -C src -j2 lib CC=musl-gcc LD=musl-gcc \
    CFLAGS="-W -Wall -Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables" >/dev/null
echo "built BearSSL into $dest/src/build/libbearssl.a"
