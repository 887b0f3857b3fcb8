#!/bin/sh
# make run: serve on 127.0.0.1:7777 with a development secret and print a ready token.
set -eu
bin=$1
secret=build/dev-secret
if [ ! -s "$secret" ]; then
    umask 077
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$secret"
fi
mkdir -p build/workspace
token=$("$bin" token --secret-file "$secret" --ttl 86400)
cat <<MSG
sandbox-agent on http://127.0.0.1:7777 (secret in $secret, token valid 24 h)
token: $token
try:   curl -s -H "Authorization: Bearer $token" http://127.0.0.1:7777/info
MSG
exec "$bin" --listen 127.0.0.1:7777 --jwt-secret-file "$secret" --workdir "$(pwd)/build/workspace"
