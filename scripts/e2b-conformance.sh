#!/bin/sh
# E2B's own SDK tests (github.com/e2b-dev/E2B, packages/js-sdk/tests/sandbox/{commands,files,pty})
# run from the SDK's source, in its debug mode, against the agent's --e2b-listen port. Nothing of
# E2B's is copied into this repository: the tests come from a local checkout of E2B
# (E2B_REPO, default the mirror /work/.mirror/e2b-dev+E2B/repo; `git clone
# https://github.com/e2b-dev/E2B` works too), and run in a throwaway directory.
#
# The tests assume E2B's sandbox: user `user` with home /home/user, bash, python3, tput,
# writes to /. So the agent runs as uid 1000 (`user`) chrooted into a throwaway root made of
# the host's /usr bind-mounted read-only, a few files of /etc, and a writable / (mode 1777),
# in a private mount namespace (needs root; nothing on the host is changed).
# Output: a summary on stdout and in $OUT (default bench/e2b-conformance.md), vitest's JSON
# in $WORK/results.json. Usage: scripts/e2b-conformance.sh (from the top of the repo).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
src=${E2B_REPO:-/work/.mirror/e2b-dev+E2B/repo}
work=${WORK:-/tmp/e2b-conformance}
out=${OUT:-$top/bench/e2b-conformance.md}
port=${PORT:-49983}
bin=$top/build/sandbox-agent
[ -x "$bin" ] || make -s
[ -d "$src" ] || { echo "e2b-conformance: no E2B checkout at $src (set E2B_REPO)" >&2; exit 2; }
command -v npm >/dev/null || { echo "e2b-conformance: npm is missing (scripts/deps.sh test)" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "e2b-conformance: needs root (a mount namespace and a chroot)" >&2; exit 2; }

# ---- the SDK's source and tests, and what they need to run (cached between runs) ----
mkdir -p "$work"
rev=$(git -C "$src" rev-parse HEAD)
if [ "$(cat "$work/sdk/.rev" 2>/dev/null)" != "$rev" ]; then
    rm -rf "$work/sdk"
    mkdir -p "$work/sdk"
    git -C "$src" archive HEAD packages/js-sdk | tar -x -C "$work/sdk" --strip-components=2
    cd "$work/sdk"
    mv package.json package.e2b.json   # its devDependencies (playwright, wrangler...) are not needed
    echo '{"name":"e2b-conformance","private":true}' > package.json
    deps=$(node -e 'const p=require("./package.e2b.json");console.log(Object.entries(p.dependencies).map(([k,v])=>k+"@"+v).join(" "))')
    echo "e2b-conformance: npm install (the SDK's dependencies, vitest 4)" >&2
    # shellcheck disable=SC2086
    npm install --no-audit --no-fund --loglevel=error $deps vitest@4 error-stack-parser-es@2 >&2
    echo "$rev" > .rev
    cd "$top"
fi
cat > "$work/sdk/conformance.vitest.config.mts" <<'EOF'
import { defineConfig } from 'vitest/config'
export default defineConfig({
  test: {
    include: ['tests/sandbox/{commands,files,pty}/**/*.test.ts'],
    isolate: true, globals: false, environment: 'node', testTimeout: 30_000,
    setupFiles: ['tests/globalFetchFallback.setup.ts'], deps: { interopDefault: true },
    fileParallelism: false,   // one envd, one filesystem: files run one after another
  },
})
EOF

# ---- the throwaway root ----
root=$work/root
if [ -d "$root" ]; then   # a previous run's (its mounts went with its namespace)
    rm -rf "$root"
fi
mkdir -p "$root/usr" "$root/etc" "$root/home/user" "$root/tmp" "$root/proc" "$root/dev" \
         "$root/sys" "$root/opt" "$root/var/tmp" "$root/run"
for l in bin lib lib64 sbin; do [ -L "/$l" ] && ln -s "$(readlink "/$l")" "$root/$l"; done
printf 'root:x:0:0:root:/root:/bin/bash\nuser:x:1000:1000:user:/home/user:/bin/bash\n' > "$root/etc/passwd"
printf 'root:x:0:\nuser:x:1000:\n' > "$root/etc/group"
for f in ld.so.cache ld.so.conf hosts resolv.conf nsswitch.conf profile bash.bashrc inputrc; do
    [ -e "/etc/$f" ] && cp -L "/etc/$f" "$root/etc/"
done
[ -d /etc/alternatives ] && cp -a /etc/alternatives "$root/etc/"
[ -d /etc/terminfo ] && cp -a /etc/terminfo "$root/etc/"
cp "$bin" "$root/opt/sandbox-agent"
chown 1000:1000 "$root/home/user"
chmod 1777 "$root" "$root/tmp" "$root/var/tmp"

log=$work/agent.log
unshare --mount sh -c '
    set -e
    mount --make-rprivate /
    mount --bind /usr "$1/usr" && mount -o remount,bind,ro "$1/usr"
    mount --rbind /proc "$1/proc"
    mount --rbind /dev "$1/dev"
    mount --rbind /sys "$1/sys"
    exec env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/user USER=user LANG=C.UTF-8 \
        /usr/sbin/chroot --userspec=1000:1000 "$1" /opt/sandbox-agent --no-auth --listen 127.0.0.1:0 \
        --workdir /home/user --e2b-listen "127.0.0.1:$2"' sh "$root" "$port" > "$work/agent.out" 2> "$log" &
agent=$!
trap 'kill $agent 2>/dev/null || true' EXIT INT TERM
i=0
until grep -q '^e2b listening' "$work/agent.out" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 100 ] || ! kill -0 $agent 2>/dev/null; then
        echo "e2b-conformance: the agent did not start:" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done

# ---- the run ----
cd "$work/sdk"
set +e
E2B_DEBUG=true E2B_SANDBOX_URL=http://127.0.0.1:$port npx vitest run \
    --config conformance.vitest.config.mts --reporter=default --reporter=json \
    --outputFile.json="$work/results.json" > "$work/vitest.log" 2>&1
set -e
cd "$top"
kill $agent 2>/dev/null || true
wait $agent 2>/dev/null || true

node - "$work/results.json" "$out" "$rev" <<'EOF'
const fs = require("fs");
const [res, out, rev] = process.argv.slice(2);
const r = JSON.parse(fs.readFileSync(res, "utf8"));
const n = { passed: 0, failed: 0, skipped: 0 };
const rows = [], fails = [];
for (const f of r.testResults) {
  const file = f.name.replace(/.*tests\/sandbox\//, "");
  const c = { passed: 0, failed: 0, skipped: 0 };
  for (const t of f.assertionResults) {
    const s = t.status === "passed" ? "passed" : t.status === "failed" ? "failed" : "skipped";
    c[s]++; n[s]++;
    if (s === "failed")
      fails.push(`| ${file} | ${t.title} | ${(t.failureMessages[0] || "").split("\n")[0].replace(/\|/g, "/").slice(0, 160)} |`);
  }
  if (!f.assertionResults.length && f.message) { c.failed++; n.failed++; fails.push(`| ${file} | (file) | ${f.message.split("\n")[0].slice(0, 160)} |`); }
  rows.push(`| ${file} | ${c.passed} | ${c.failed} | ${c.skipped} |`);
}
rows.sort();
const md = `# E2B's own SDK tests against sandbox-agent

E2B's JS SDK tests \`tests/sandbox/{commands,files,pty}\` (e2b-dev/E2B at ${rev.slice(0, 12)}),
run from source in debug mode by \`scripts/e2b-conformance.sh\` against the agent's
\`--e2b-listen\`, the agent running as \`user\` in a throwaway root (host /usr read-only).

**${n.passed} passed, ${n.failed} failed, ${n.skipped} skipped** (of ${n.passed + n.failed + n.skipped}).

| file | passed | failed | skipped |
|---|---|---|---|
${rows.join("\n")}

## Failures

| file | test | first line of the error |
|---|---|---|
${fails.join("\n")}

Why, as of the last run: "bash command scoped env vars" runs \`sudo\`, which the throwaway
root does not have (the host has none to bind in). The gzip upload cases pass since the
agent inflates \`Content-Encoding: gzip\` bodies (inflate.c). The skipped cases skip themselves in debug mode
(they need E2B's cloud: sandbox kill, signed URLs).
`;
fs.writeFileSync(out, md);
console.log(`e2b-conformance: ${n.passed} passed, ${n.failed} failed, ${n.skipped} skipped (${out})`);
EOF
