#!/bin/sh
# make image: assemble build/rootfs and build localhost/sandbox-agent:latest FROM scratch.
# Nothing is pulled: the root filesystem is the static agent (the entrypoint, PID 1), Debian's
# static busybox with its applet links (a shell and coreutils for commands), /workspace, /tmp.
# Usage: scripts/image.sh [AGENT_BIN]
#   env: IMAGE (tag), ROOTFS (default build/rootfs), CONTAINER_ENGINE (podman|docker)
set -eu
bin=${1:-build/sandbox-agent}
tag=${IMAGE:-localhost/sandbox-agent:latest}
root=${ROOTFS:-build/rootfs}
busybox=/bin/busybox

engine=${CONTAINER_ENGINE:-}
if [ -z "$engine" ]; then
    if command -v podman >/dev/null 2>&1; then engine=podman
    elif command -v docker >/dev/null 2>&1; then engine=docker
    else echo "image.sh: neither podman nor docker is installed (scripts/deps.sh image)" >&2; exit 1
    fi
fi
[ -x "$bin" ] || { echo "image.sh: $bin is not built (make)" >&2; exit 1; }
# a dynamic busybox (Debian's 'busybox' package) would find no libc in a scratch image
if [ ! -x "$busybox" ] || ! ldd "$busybox" 2>&1 | grep -q 'not a dynamic'; then
    echo "image.sh: $busybox is not a static busybox (apt-get install busybox-static)" >&2
    exit 1
fi

rm -rf "$root"
mkdir -p "$root/usr/local/bin" "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" \
         "$root/etc" "$root/root" "$root/workspace" "$root/proc" "$root/sys" "$root/dev" \
         "$root/run" "$root/tmp" "$root/var/tmp"
chmod 1777 "$root/tmp" "$root/var/tmp"
cp "$bin" "$root/usr/local/bin/sandbox-agent"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list-full); do
    [ "$applet" = bin/busybox ] || [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    > "$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"

# the context is the root filesystem alone: nothing else of the tree goes to the engine
$engine build --quiet -f Dockerfile -t "$tag" "$root" >/dev/null
size=$($engine image inspect --format '{{.Size}}' "$tag")
echo "built $tag with $engine: $size bytes ($(du -sk "$root" | cut -f1) KiB in $root)"
