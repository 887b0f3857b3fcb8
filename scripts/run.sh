#!/bin/sh
# make run: serve on 127.0.0.1:7777 with a development secret and print a ready token.
# PORT=N (make run PORT=8080) or SANDBOX_AGENT_LISTEN=HOST:PORT choose where; the address
# printed is the one the agent bound (port 0 picks a free one).
set -eu
bin=$1
secret=build/dev-secret
if [ ! -s "$secret" ]; then
    umask 077
    od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$secret"
fi
listen=${SANDBOX_AGENT_LISTEN:-127.0.0.1:${PORT:-7777}}
if [ -n "${PORT:-}" ]; then
    listen=${listen%:*}:$PORT
fi
case ${PORT:-0} in
    *[!0-9]*) echo "make run: PORT must be a number, got '$PORT'" >&2; exit 2 ;;
esac
mkdir -p build/workspace
token=$("$bin" token --secret-file "$secret" --ttl 86400)
cat <<MSG
sandbox-agent on http://$listen (secret in $secret, token valid 24 h)
token: $token
try:   curl -s -H "Authorization: Bearer $token" http://$listen/info
MSG
exec "$bin" --listen "$listen" --jwt-secret-file "$secret" --workdir "$(pwd)/build/workspace"
