#!/bin/sh
# make vm: the agent as a Linux VM's /init with nothing in front of it, under QEMU.
#   kernel   Debian's linux-image-*-cloud-amd64 (apt-get download, dpkg-deb -x; never committed)
#   initrd   /init = the static agent, static busybox for users' commands, the 8 virtio NIC
#            modules + nic.modules (their load order) for --modules; the JWT secret in a
#            second small cpio archive appended to it (not on the kernel command line: ps
#            shows that, and /proc/cmdline in the guest too)
#   boot     qemu-system-x86_64 -cpu max (KVM when /dev/kvm is usable, else TCG), user
#            networking with restrict=on (no way out) and one forward, 127.0.0.1:PORT -> 7777
#
# Usage: scripts/vm.sh run [AGENT_BIN]      build, boot, print a token and a curl line
#        scripts/vm.sh build [AGENT_BIN]    only build build/vm/{vmlinuz,initrd.img}
#        scripts/vm.sh boot                 boot what is built (the tests use this)
# env (boot): VM_PORT (host port, default 7780), VM_SECRET (secret file, default
#   build/dev-secret), VM_INITRD (another initrd to boot), VM_APPEND (more kernel command
#   line words, after the defaults, so they win), VM_NET (default eth0=10.0.2.15/24,gw=10.0.2.2),
#   VM_MEM (MiB, default 256), VM_INIT (/init of the image, default the agent; bench uses
#   /sbin/init-sh for a shell init in front of it)
set -eu
cmd=${1:-run}
bin=${2:-build/sandbox-agent}
vm=${VM_DIR:-build/vm}
port=${VM_PORT:-7780}
secret=${VM_SECRET:-build/dev-secret}
# the virtio NIC's module chain in dependency order (modinfo depends=)
nic_modules="kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_pci_modern_dev.ko
kernel/drivers/virtio/virtio_pci_legacy_dev.ko
kernel/drivers/virtio/virtio.ko
kernel/drivers/virtio/virtio_pci.ko
kernel/net/core/failover.ko
kernel/drivers/net/net_failover.ko
kernel/drivers/net/virtio_net.ko"

die() { echo "vm.sh: $*" >&2; exit 1; }

# Debian's cloud kernel: the newest the archive offers, fetched once into $vm/kernel.
kernel() {
    [ -s "$vm/kernel/vmlinuz" ] && return 0
    command -v dpkg-deb >/dev/null || die "dpkg-deb missing (scripts/deps.sh build)"
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
    if [ -z "$pkg" ]; then
        apt-get update -qq >/dev/null 2>&1 || true
        pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/ { print $2; exit }')
    fi
    [ -n "$pkg" ] || die "no linux-image-cloud-amd64 in the apt lists"
    rm -rf "$vm/kernel" "$vm/deb"
    mkdir -p "$vm/deb" "$vm/kernel"
    echo "vm: fetching $pkg" >&2
    (cd "$vm/deb" && apt-get download -o APT::Sandbox::User=root "$pkg" >/dev/null 2>&1) ||
        die "apt-get download $pkg failed"
    dpkg-deb -x "$vm"/deb/*.deb "$vm/deb/x"
    ver=$(ls "$vm/deb/x/lib/modules")
    mkdir -p "$vm/kernel/modules"
    for m in $nic_modules; do
        cp "$vm/deb/x/lib/modules/$ver/$m" "$vm/kernel/modules/" || die "$m missing from $pkg"
    done
    echo "$ver" > "$vm/kernel/version"
    cp "$vm/deb/x/boot/vmlinuz-$ver" "$vm/kernel/vmlinuz.tmp"
    rm -rf "$vm/deb"
    mv "$vm/kernel/vmlinuz.tmp" "$vm/kernel/vmlinuz"
}

# The root filesystem, packed uncompressed: under TCG the kernel inflates a compressed
# initrd slower than QEMU copies the plain one into memory.
initrd() {
    [ -x "$bin" ] || die "$bin is not built (make)"
    bb=/bin/busybox
    { [ -x "$bb" ] && ldd "$bb" 2>&1 | grep -q 'not a dynamic'; } ||
        die "$bb is not a static busybox (apt-get install busybox-static)"
    command -v cpio >/dev/null || die "cpio missing (scripts/deps.sh vm)"
    root=$vm/root
    rm -rf "$root"
    mkdir -p "$root/bin" "$root/sbin" "$root/usr/bin" "$root/usr/sbin" "$root/etc/sandbox-agent" \
             "$root/lib/modules" "$root/root" "$root/workspace" "$root/tmp" "$root/dev" \
             "$root/proc" "$root/sys" "$root/run"
    chmod 1777 "$root/tmp"
    chmod 700 "$root/etc/sandbox-agent"
    cp "$bin" "$root/init"
    cp "$bb" "$root/bin/busybox"
    for applet in $("$bb" --list-full); do
        [ "$applet" = bin/busybox ] || [ -e "$root/$applet" ] || ln -s /bin/busybox "$root/$applet"
    done
    # the kernel opens /dev/console for init's stdio before anything is mounted
    mknod -m 600 "$root/dev/console" c 5 1 2>/dev/null || true
    cp "$vm"/kernel/modules/*.ko "$root/lib/modules/"
    for m in $nic_modules; do echo "${m##*/}"; done > "$root/lib/modules/nic.modules"
    # bench: a shell init in front of the agent, doing what --modules/--net do
    cat > "$root/sbin/init-sh" <<'SH'
#!/bin/sh
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev
while read -r m; do insmod "/lib/modules/$m"; done < /lib/modules/nic.modules
ip link set eth0 up; ip addr add 10.0.2.15/24 dev eth0; ip route add default via 10.0.2.2
exec /init --init
SH
    chmod 755 "$root/sbin/init-sh"
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
        > "$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' > "$root/etc/group"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$vm/initrd.img.tmp"
    mv "$vm/initrd.img.tmp" "$vm/initrd.img"
    cp "$vm/kernel/vmlinuz" "$vm/vmlinuz"
}

# initrd + a second archive holding only the secret (0400, root's), into $1.
with_secret() {
    s=$vm/secret.$$.d
    rm -rf "$s"
    mkdir -p "$s/etc/sandbox-agent"
    chmod 700 "$s/etc/sandbox-agent"
    (umask 077 && cp "$secret" "$s/etc/sandbox-agent/jwt-secret")
    chmod 400 "$s/etc/sandbox-agent/jwt-secret"
    cp "${VM_INITRD:-$vm/initrd.img}" "$1.tmp"
    (cd "$s" && printf 'etc/sandbox-agent\netc/sandbox-agent/jwt-secret\n' |
        cpio -o -H newc -R 0:0 --quiet) >> "$1.tmp"
    rm -rf "$s"
    chmod 600 "$1.tmp"
    mv "$1.tmp" "$1"
}

dev_secret() {
    [ -s "$secret" ] && return 0
    (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$secret")
}

boot() {
    [ -s "$vm/vmlinuz" ] && [ -s "$vm/initrd.img" ] || die "nothing built (scripts/vm.sh build)"
    command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing (scripts/deps.sh vm)"
    [ -s "$secret" ] || die "no secret file $secret"
    accel="-accel tcg"
    [ -w /dev/kvm ] && accel="-accel kvm -accel tcg"
    # one per port, 0600 like the secret file itself; exec keeps QEMU's pid the caller's
    run_initrd=$vm/initrd-$port.img
    with_secret "$run_initrd"
    net=${VM_NET:-eth0=10.0.2.15/24,gw=10.0.2.2}
    init=${VM_INIT:-}
    # NAME=value words reach init as its environment (API.md, Virtual machines).
    # no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer test can miss
    # its ticks and panic ("IO-APIC + timer doesn't work!"); a VM's timer is known good
    append="console=ttyS0 quiet panic=-1 no_timer_check ${init:+rdinit=$init }SANDBOX_AGENT_INIT=1"
    append="$append SANDBOX_AGENT_MODULES=/lib/modules/nic.modules SANDBOX_AGENT_NET=$net"
    append="$append SANDBOX_AGENT_DNS=10.0.2.3 SANDBOX_AGENT_JWT_SECRET_FILE=/etc/sandbox-agent/jwt-secret"
    append="$append ${VM_APPEND:-}"
    # shellcheck disable=SC2086
    exec qemu-system-x86_64 $accel -cpu max -m "${VM_MEM:-256}" -nodefaults -no-user-config \
        -nographic -serial mon:stdio -no-reboot \
        -kernel "$vm/vmlinuz" -initrd "$run_initrd" -append "$append" \
        -nic "user,model=virtio-net-pci,restrict=on,hostfwd=tcp:127.0.0.1:$port-:7777"
}

case "$cmd" in
build) kernel && initrd ;;
boot)  boot ;;
run)
    kernel && initrd
    dev_secret
    token=$("$bin" token --secret-file "$secret" --ttl 86400)
    cat <<MSG
sandbox-agent in a VM on http://127.0.0.1:$port (QEMU; secret in $secret, token valid 24 h)
token: $token
try:   curl -s -H "Authorization: Bearer $token" http://127.0.0.1:$port/info
       curl -s -H "Authorization: Bearer $token" -d '{"command":"uname -a"}' http://127.0.0.1:$port/commands/run
stop:  Ctrl-A X (QEMU), or: curl ... -d '{"command":"kill -TERM 1"}' .../commands/run (powers off)
MSG
    boot ;;
*) die "unknown command '$cmd' (run, build, boot)" ;;
esac
