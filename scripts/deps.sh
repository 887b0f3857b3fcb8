#!/bin/sh
# Install what the build and tests need, from Debian's archive only.
# Idempotent and quick: apt is touched only when something is missing.
# Usage: scripts/deps.sh [build|test|bench|image]   (default: build)
set -eu

need_build="musl-tools dpkg-dev make"
need_test="python3-pytest curl jq clang libclang-rt-14-dev python3-prometheus-client valgrind llvm"
need_test="$need_test python3-websockets"   # live streams (issue 14): a real WebSocket client
need_test="$need_test nodejs"   # the SDK suite (node + npm; scripts/sdk.sh installs the SDK)
need_bench="wrk nginx-light hyperfine bc tini linux-perf"
need_image="podman runc busybox-static"

pkgs=$need_build
case "${1:-build}" in
  build) ;;
  test)  pkgs="$pkgs $need_test $need_image" ;;   # the container tests
  bench) pkgs="$pkgs $need_test $need_bench $need_image" ;;
  image) pkgs="$pkgs $need_image" ;;
  all)   pkgs="$pkgs $need_test $need_bench $need_image" ;;
  *) echo "deps.sh: unknown set '$1'" >&2; exit 2 ;;
esac

missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
    missing="$missing $p"
done

# BearSSL's source comes from Debian's source package, so a deb-src entry must exist.
has_src() {
  grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ ||
    grep -qs '^deb-src' /etc/apt/sources.list
}

[ -z "$missing" ] && has_src && exit 0

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

if ! has_src; then
  echo "deps: adding a deb-src entry for Debian's source packages" >&2
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
  # deb822 with the same Signed-By as Debian's own entry, or apt sees a conflict.
  printf 'Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$codename" | $SUDO tee /etc/apt/sources.list.d/sandbox-agent-src.sources >/dev/null
  $SUDO apt-get update -qq
fi

if [ -n "$missing" ]; then
  echo "deps: installing$missing" >&2
  $SUDO apt-get update -qq || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi
