// The SDK's error classes and messages: what a user sees when a call fails.
import assert from "node:assert/strict";
import { mintToken, rejection } from "../lib/harness.mjs";

export async function test_desktop_not_available({ sandbox, sdk }) {
    for (const call of [() => sandbox.desktop.startVnc(), () => sandbox.desktop.mouseClick(1, 2),
                        () => sandbox.desktop.getVncInfo()]) {
        const e = await rejection(call());
        assert.ok(e instanceof sdk.DesktopNotAvailableError, `${e.name}: ${e.message}`);
        assert.equal(e.code, "DESKTOP_NOT_AVAILABLE");
        assert.match(e.message, /desktop/i);
    }
}

export async function test_bad_request_message_is_the_agents({ sandbox, sdk }) {
    const e = await rejection(sandbox.agentClient.post("/commands/run", { timeout: 5 }));
    assert.ok(e instanceof sdk.APIError, `${e.name}: ${e.message}`);
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, "MISSING_PARAMETER");
    assert.match(e.message, /command/);
    assert.doesNotMatch(e.message, /status code/);
    assert.ok(e.requestId, "X-Request-ID reaches the error");
}

export async function test_unknown_path_is_not_a_missing_file({ sandbox, sdk }) {
    const e = await rejection(sandbox.agentClient.get("/no/such/endpoint"));
    assert.ok(!(e instanceof sdk.FileNotFoundError), `${e.name}: ${e.message}`);
    assert.equal(e.statusCode, 404);
    assert.equal(e.code, "NOT_FOUND");
    assert.doesNotMatch(e.message, /status code/);
}

export async function test_expired_token_asks_the_control_plane({ connect, workdir, sdk }) {
    // On the agent's 401 the SDK asks the control plane for a new token and retries once.
    // SDK 0.5.1 then still sends its first token (updateJwtToken sets axios's
    // defaults.headers.common, which the instance's own Authorization header outranks), so
    // the retry fails too: what the agent can do is say "token expired" so the SDK raises
    // TokenExpiredError. connect() refreshes twice, the 401 once more.
    const { sandbox, controlPlane } = await connect({ tokens: [-120, -120, 3600] });
    const e = await rejection(sandbox.commands.run("echo fresh", { workingDir: workdir }));
    assert.ok(e instanceof sdk.TokenExpiredError, `${e.name}: ${e.message}`);
    const refreshes = controlPlane.calls.filter((c) => c.endsWith("/token/refresh"));
    assert.equal(refreshes.length, 3, controlPlane.calls.join(", "));
}

export async function test_token_expired_error({ connect, sdk }) {
    const { sandbox } = await connect({ tokens: [-120] });
    const e = await rejection(sandbox.getAgentInfo());
    assert.ok(e instanceof sdk.TokenExpiredError, `${e.name}: ${e.message}`);
    assert.match(e.message, /token expired/);
}

export async function test_bad_token_is_authentication_error({ connect, sdk }) {
    const { sandbox } = await connect({ tokens: [mintToken("not-the-secret", 3600)] });
    const e = await rejection(sandbox.getAgentInfo());
    assert.ok(e instanceof sdk.AuthenticationError, `${e.name}: ${e.message}`);
    assert.ok(!(e instanceof sdk.TokenExpiredError));
    assert.equal(e.statusCode, 401);
    assert.match(e.message, /bearer token/);
}
