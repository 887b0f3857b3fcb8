// sandbox.commands.run / runBackground, listProcesses, killProcess (POST /commands/run,
// /commands/background, GET /execute/processes, POST /execute/kill/{id}).
import assert from "node:assert/strict";
import { rejection, waitFor } from "../lib/harness.mjs";

const find = async (sandbox, id) => (await sandbox.listProcesses()).find((p) => p.process_id === id);

export async function test_run_returns_output_and_exit_code({ sandbox, workdir }) {
    const r = await sandbox.commands.run("echo hello; echo oops >&2; exit 3", { workingDir: workdir });
    assert.equal(r.stdout, "hello\n");
    assert.equal(r.stderr, "oops\n");
    assert.equal(r.exit_code, 3);
    assert.equal(r.success, false);
    assert.equal(typeof r.execution_time, "number");
}

export async function test_run_shell_features_env_and_workdir({ sandbox, workdir }) {
    const r = await sandbox.commands.run("echo $GREETING | tr a-z A-Z; pwd", {
        workingDir: workdir, env: { GREETING: "hi there" },
    });
    assert.equal(r.stdout, `HI THERE\n${workdir}\n`);
    assert.equal(r.exit_code, 0);
    assert.equal(r.success, true);
}

export async function test_run_timeout_is_an_error_with_a_message({ sandbox, workdir, sdk }) {
    const e = await rejection(sandbox.commands.run("sleep 30", { workingDir: workdir, timeout: 1 }));
    assert.ok(e instanceof sdk.HopxError, String(e));
    assert.equal(e.statusCode, 408);
    assert.equal(e.code, "EXECUTION_TIMEOUT");
    assert.doesNotMatch(e.message, /status code/);
}

export async function test_run_background_option_and_list({ sandbox, workdir }) {
    const r = await sandbox.commands.run("echo from-bg", { workingDir: workdir, background: true });
    assert.match(r.process_id, /^proc_[0-9a-f]{16}$/);
    assert.ok(["queued", "running", "completed"].includes(r.status), r.status);
    const done = await waitFor(async () => {
        const p = await find(sandbox, r.process_id);
        return p && ["completed", "failed"].includes(p.status) && p;
    }, "the background command to finish");
    assert.equal(done.status, "completed");
    assert.equal(done.exit_code, 0);
    assert.equal(done.stdout, "from-bg\n");
}

export async function test_run_background_method({ sandbox, workdir }) {
    const r = await sandbox.commands.runBackground("sleep 0.1; echo later", { workingDir: workdir });
    assert.match(r.process_id, /^proc_/);
    assert.match(r.execution_id, /^exec_/);
    const done = await waitFor(async () => {
        const p = await find(sandbox, r.process_id);
        return p && p.status === "completed" && p;
    }, "runBackground to complete");
    assert.equal(done.stdout, "later\n");
    assert.equal(done.kind, "command");
}

export async function test_kill_background_process({ sandbox, workdir }) {
    const r = await sandbox.commands.runBackground("sleep 60", { workingDir: workdir });
    await waitFor(async () => (await find(sandbox, r.process_id))?.status === "running", "running");
    await sandbox.killProcess(r.process_id);
    const done = await waitFor(async () => {
        const p = await find(sandbox, r.process_id);
        return p && p.status === "failed" && p;
    }, "the killed process to end");
    assert.equal(done.reason, "killed");
}

export async function test_kill_unknown_process_is_readable({ sandbox, sdk }) {
    const e = await rejection(sandbox.killProcess("proc_0000000000000000"));
    assert.ok(e instanceof sdk.HopxError, String(e));
    // a missing process is not a missing file: the SDK maps "not found" on a 404 to
    // FileNotFoundError, so the agent says "no such process"
    assert.ok(!(e instanceof sdk.FileNotFoundError), `${e.name}: ${e.message}`);
    assert.equal(e.statusCode, 404);
    assert.equal(e.code, "PROCESS_NOT_FOUND");
    assert.match(e.message, /no such process/);
}
