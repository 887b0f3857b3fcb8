// sandbox.runCodeAsync (POST /execute/async): the SDK's form of a signed completion webhook,
// received by a Node HTTP server on loopback that checks the signature the documented way
// (HMAC-SHA256 over the X-HopX-Timestamp value followed directly by the raw body bytes).
import assert from "node:assert/strict";
import crypto from "node:crypto";
import http from "node:http";
import { rejection, waitFor } from "../lib/harness.mjs";

/** A receiver: every request kept as { headers, body (Buffer) }. */
async function receiver() {
    const got = [];
    const server = http.createServer((req, res) => {
        const parts = [];
        req.on("data", (c) => parts.push(c));
        req.on("end", () => {
            got.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(parts) });
            res.writeHead(200, { "Content-Type": "application/json" });
            res.end('{"ok":true}');
        });
    });
    await new Promise((ok) => server.listen(0, "127.0.0.1", ok));
    return { url: `http://127.0.0.1:${server.address().port}/hopx/done`, got,
             close: () => new Promise((ok) => server.close(ok)) };
}

function verify(secret, headers, body) {
    const want = "sha256=" + crypto.createHmac("sha256", secret)
        .update(Buffer.concat([Buffer.from(headers["x-hopx-timestamp"]), body])).digest("hex");
    const have = Buffer.from(headers["x-hopx-signature"] || "");
    return have.length === want.length && crypto.timingSafeEqual(have, Buffer.from(want));
}

export async function test_run_code_async_signed_webhook({ sandbox, workdir }) {
    const rx = await receiver();
    try {
        const r = await sandbox.runCodeAsync("print('from the sdk')", {
            workingDir: workdir, callbackUrl: rx.url, callbackSignatureSecret: "sdk-secret",
            callbackHeaders: { "X-Job": "nightly" },
        });
        assert.match(r.execution_id, /^exec_/);
        assert.equal(r.callback_url, rx.url);
        assert.ok(["queued", "running", "completed"].includes(r.status), r.status);
        await waitFor(async () => rx.got.length === 1, "the webhook");
        const { method, url, headers, body } = rx.got[0];
        assert.equal(method, "POST");
        assert.equal(url, "/hopx/done");
        assert.equal(headers["x-job"], "nightly");
        assert.equal(headers["content-type"], "application/json");
        assert.ok(verify("sdk-secret", headers, body), "signature checks out");
        assert.ok(!verify("other-secret", headers, body), "a wrong secret does not");
        const p = JSON.parse(body.toString("utf8"));
        assert.equal(p.execution_id, r.execution_id);
        assert.equal(p.status, "completed");
        assert.equal(p.success, true);
        assert.equal(p.exit_code, 0);
        assert.equal(p.stdout, "from the sdk\n");
        // the record shows the delivery
        const rec = await waitFor(async () => {
            const x = (await sandbox.listProcesses()).find((q) => q.execution_id === r.execution_id);
            return x && x.callback && x.callback.state === "delivered" && x;
        }, "the record's callback state");
        assert.equal(rec.callback.attempts, 1);
        assert.equal(rec.callback.last_status, 200);
    } finally {
        await rx.close();
    }
}

export async function test_run_code_async_bad_url_is_readable({ sandbox, workdir, sdk }) {
    const e = await rejection(sandbox.runCodeAsync("print(1)", { workingDir: workdir, callbackUrl: "ftp://x/y" }));
    assert.ok(e instanceof sdk.HopxError, String(e));
    assert.equal(e.statusCode, 400);
    assert.match(e.message, /callback_url/);
    assert.doesNotMatch(e.message, /status code/);
}
