#!/usr/bin/env python3
"""Where the binary's bytes are: reads a GNU ld map (-Wl,-Map) of the agent's link and prints
the bytes each input object puts into the file (code, read-only data, data; not .bss, which
costs memory, not file size), summed by origin (the agent's own objects, BearSSL, musl) and
then the largest objects. Usage: size.py MAP [N]   (make size)"""
import collections
import re
import sys

# an input section: " .text.name  0xADDR  0xSIZE  file", or its name alone on one line
# (a long name) and " 0xADDR 0xSIZE file" on the next
ONE = re.compile(r"^ (\.\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)")
NAME = re.compile(r"^ (\.\S+)$")
REST = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)")
SKIP = (".bss", ".tbss", ".comment", ".note", ".debug", ".symtab", ".strtab")


def origin(f):
    if "libbearssl" in f:
        return "BearSSL"
    if "musl" in f or "libc.a" in f or "/gcc/" in f:
        return "musl (and crt)"
    return "agent"


def main():
    by_file = collections.Counter()
    started, pending = False, None
    for line in open(sys.argv[1]):
        line = line.rstrip("\n")
        if line.startswith("Linker script and memory map"):
            started = True
            continue
        if not started:
            continue
        m = ONE.match(line)
        if m:
            sec, addr, size, f = m.groups()
        else:
            n = NAME.match(line)
            m = REST.match(line) if pending and not n else None
            if n:
                pending = n.group(1)
                continue
            if not m:
                pending = None
                continue
            addr, size, f = m.groups()
            sec = pending
        pending = None
        if sec.startswith(SKIP) or int(addr, 16) == 0:
            continue   # not in the file, or discarded by --gc-sections
        by_file[f.split("/")[-1]] += int(size, 16)
    groups = collections.Counter()
    for f, n in by_file.items():
        groups[origin(f)] += n
    total = sum(groups.values())
    print(f"{total} bytes of sections ({total / 1024:.1f} KiB):")
    for g, n in groups.most_common():
        print(f"  {n:7d}  {n / 1024:6.1f} KiB  {g}")
    print("largest objects:")
    for f, n in by_file.most_common(int(sys.argv[2]) if len(sys.argv) > 2 else 25):
        print(f"  {n:7d}  {f}")


if __name__ == "__main__":
    main()
