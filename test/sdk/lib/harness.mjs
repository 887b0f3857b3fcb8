// Shared by every section of the SDK suite: loads the official @hopx-ai/sdk, starts a
// stand-in control plane on loopback and connects the SDK through it to the agent that
// test/integration/test_sdk.py started (AGENT_URL, AGENT_SECRET, AGENT_WORKDIR).
//
// The SDK never talks to an agent directly: Sandbox.connect(id, key, base) asks the control
// plane for GET /v1/sandboxes/{id} (status, public_host = the agent's URL) and
// POST /v1/sandboxes/{id}/token/refresh (auth_token, token_expires_at), then sends every
// agent call to public_host with "Authorization: Bearer <auth_token>". The stand-in answers
// exactly those two routes, minting HS256 tokens with the agent's secret.
import { createRequire } from "node:module";
import crypto from "node:crypto";
import http from "node:http";

const require = createRequire(import.meta.url);
export const sdk = require("@hopx-ai/sdk");

const b64url = (buf) => Buffer.from(buf).toString("base64url");

/** An HS256 JWT the agent accepts: exp (required) and iat, in unix seconds. */
export function mintToken(secret, ttlSeconds, claims = {}) {
    const now = Math.floor(Date.now() / 1000);
    const head = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
    const body = b64url(JSON.stringify({ iat: now, exp: now + ttlSeconds, ...claims }));
    const sig = crypto.createHmac("sha256", secret).update(`${head}.${body}`).digest();
    return `${head}.${body}.${b64url(sig)}`;
}

/**
 * The control plane: every request is recorded in `calls` ("METHOD /path").
 * tokens: what each token refresh hands out in turn (the last one repeats): a number is a TTL
 * in seconds for a token minted with the agent's secret (negative: already expired), a string
 * is handed out as it is. So a test can hand out an expired token first and watch the SDK
 * refresh it on the agent's 401.
 */
export async function startControlPlane({ agentUrl, secret, sandboxId, tokens = [7200] }) {
    const calls = [];
    let issued = 0;
    const server = http.createServer((req, res) => {
        calls.push(`${req.method} ${req.url}`);
        req.resume();
        const reply = (status, body) => {
            res.writeHead(status, { "Content-Type": "application/json" });
            res.end(JSON.stringify(body));
        };
        const base = `/v1/sandboxes/${sandboxId}`;
        if (req.method === "GET" && req.url === base) {
            return reply(200, {
                id: sandboxId, sandbox_id: sandboxId, status: "running", public_host: agentUrl,
                template_name: "sandbox-agent-test", region: "loopback",
                created_at: new Date().toISOString(),
            });
        }
        if (req.method === "POST" && req.url === `${base}/token/refresh`) {
            const t = tokens[Math.min(issued++, tokens.length - 1)];
            return reply(200, {
                auth_token: typeof t === "string" ? t : mintToken(secret, t),
                // the SDK refreshes ahead when less than an hour is left: claim a long life
                // even for a token the agent will find expired
                token_expires_at: new Date(Date.now() + 7200e3).toISOString(),
            });
        }
        reply(404, { error: "sandbox not found", code: "SANDBOX_NOT_FOUND" });
    });
    await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
    const url = `http://127.0.0.1:${server.address().port}`;
    return { url, calls, close: () => new Promise((ok) => server.close(ok)) };
}

/**
 * What each test gets: { sdk, sandbox, workdir, agentUrl, secret, controlPlane, connect }.
 * connect(opts) makes another Sandbox through another control plane (e.g. other tokens).
 */
export async function connect(opts = {}) {
    const agentUrl = process.env.AGENT_URL;
    const secret = process.env.AGENT_SECRET;
    if (!agentUrl || !secret)
        throw new Error("AGENT_URL and AGENT_SECRET must be set (test_sdk.py sets them)");
    const planes = [];
    const open = async (o = {}) => {
        // token cache in the SDK is per sandbox id: a fresh id per connection keeps them apart
        const sandboxId = o.sandboxId || `sbx-test-${crypto.randomBytes(4).toString("hex")}`;
        const cp = await startControlPlane({ agentUrl, secret, sandboxId, ...o });
        planes.push(cp);
        const sandbox = await sdk.Sandbox.connect(sandboxId, "test-api-key", cp.url);
        return { sandbox, controlPlane: cp, sandboxId };
    };
    const first = await open(opts);
    return {
        sdk, agentUrl, secret,
        workdir: process.env.AGENT_WORKDIR,
        ...first,
        connect: open,
        close: async () => { for (const cp of planes) await cp.close(); },
    };
}

/** Polls fn() until it returns a truthy value; fails after `seconds`. */
export async function waitFor(fn, what, seconds = 60) {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
        const v = await fn();
        if (v) return v;
        if (Date.now() > deadline) throw new Error(`timed out after ${seconds}s waiting for ${what}`);
        await new Promise((ok) => setTimeout(ok, 50));
    }
}

/** Awaits a promise that must reject; returns the error (fails if it resolved). */
export async function rejection(promise) {
    try {
        const v = await promise;
        throw Object.assign(new Error(`expected an error, got ${JSON.stringify(v)}`), { notRejected: true });
    } catch (e) {
        if (e && e.notRejected) throw e;
        return e;
    }
}
