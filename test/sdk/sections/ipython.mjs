// sandbox.runIpython / getJupyterSessions (POST /execute/ipython, GET /jupyter/sessions).
import assert from "node:assert/strict";
import { rejection } from "../lib/harness.mjs";

export async function test_run_ipython_state_and_result({ sandbox }) {
    const a = await sandbox.runIpython("x = 6 * 7\nprint('set')");
    assert.equal(a.success, true);
    assert.equal(a.stdout, "set\n");
    const b = await sandbox.runIpython("x");
    assert.equal(b.result, "42");
    assert.equal(b.exitCode, 0);
    assert.equal(typeof b.executionTime, "number");
    assert.equal(b.hasRichOutput, true);   // result counts as one, for the SDK
}

export async function test_run_ipython_error({ sandbox }) {
    const r = await sandbox.runIpython("def f():\n    raise ValueError('bad value')\nf()");
    assert.equal(r.success, false);
    assert.equal(r.failed, true);
    assert.match(r.stderr, /ValueError: bad value/);
    // the session lives on
    assert.equal((await sandbox.runIpython("'still' + ' here'")).result, "'still here'");
}

export async function test_run_ipython_rich_output({ sandbox }) {
    const r = await sandbox.runIpython(
        "class T:\n    def _repr_html_(self): return '<table><tr><td>1</td></tr></table>'\nT()");
    assert.equal(r.html, "<table><tr><td>1</td></tr></table>");
    assert.equal(r.hasRichOutput, true);
}

export async function test_run_ipython_env({ sandbox }) {
    const r = await sandbox.runIpython("import os\nos.environ['SDK_IPY']", { env: { SDK_IPY: "yes" } });
    assert.equal(r.result, "'yes'");
}

export async function test_run_ipython_timeout_is_an_error({ sandbox, sdk }) {
    await sandbox.runIpython("kept = 1");
    const e = await rejection(sandbox.runIpython("import time\ntime.sleep(30)", { timeout: 1 }));
    assert.ok(e instanceof sdk.HopxError, String(e));
    assert.equal(e.statusCode, 408);
    assert.equal(e.code, "EXECUTION_TIMEOUT");
    assert.match(e.message, /timed out/);
    assert.equal((await sandbox.runIpython("kept")).result, "1");   // interrupted, not restarted
}

export async function test_jupyter_sessions({ sandbox }) {
    await sandbox.runIpython("1");
    const sessions = await sandbox.getJupyterSessions();
    const s = sessions.find((x) => x.id === "default");
    assert.ok(s, JSON.stringify(sessions));
    assert.match(s.kernel_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    assert.equal(s.execution_state, "idle");
    assert.ok(s.execution_count >= 1);
}
