#!/bin/sh
# Installs the official HopX TypeScript SDK (@hopx-ai/sdk, pinned in test/sdk/package-lock.json)
# into test/sdk/node_modules (git-ignored) for the SDK suite (test/integration/test_sdk.py).
# Quick when already installed: npm is run only when the lock file changed since.
# Needs node and npm (scripts/deps.sh test installs nodejs).
set -eu
dir=$(cd "$(dirname "$0")/../test/sdk" && pwd)
stamp=$dir/node_modules/.installed-lock
if [ -f "$stamp" ] && cmp -s "$stamp" "$dir/package-lock.json"; then
    exit 0
fi
command -v npm >/dev/null || { echo "sdk.sh: npm is missing (scripts/deps.sh test)" >&2; exit 1; }
echo "sdk: installing the SDK suite's npm packages (npm ci in test/sdk)" >&2
cd "$dir"
npm ci --no-audit --no-fund --loglevel=error >&2
cp package-lock.json "$stamp"
