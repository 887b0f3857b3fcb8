// sandbox.runCode / runCodeBackground (POST /execute, /execute/background).
import assert from "node:assert/strict";
import { rejection, waitFor } from "../lib/harness.mjs";

export async function test_run_code_python({ sandbox, workdir }) {
    const r = await sandbox.runCode("import sys\nprint(6 * 7)\nprint('e', file=sys.stderr)", { workingDir: workdir });
    assert.equal(r.stdout, "42\n");
    assert.equal(r.stderr, "e\n");
    assert.equal(r.exitCode, 0);
    assert.equal(r.success, true);
    assert.equal(r.language, "python");
    assert.equal(typeof r.executionTime, "number");
}

export async function test_run_code_other_languages({ sandbox, workdir }) {
    const js = await sandbox.runCode("console.log([1, 2, 3].map((x) => x * 2).join(','))", {
        language: "javascript", workingDir: workdir,
    });
    assert.equal(js.stdout, "2,4,6\n");
    const sh = await sandbox.runCode("echo $((2 ** 10))", { language: "bash", workingDir: workdir });
    assert.equal(sh.stdout, "1024\n");
}

export async function test_run_code_failure_is_an_answer({ sandbox, workdir }) {
    const r = await sandbox.runCode("import sys\nsys.exit(4)", { workingDir: workdir });
    assert.equal(r.success, false);
    assert.equal(r.exitCode, 4);
    const t = await sandbox.runCode("raise ValueError('bad value')", { workingDir: workdir });
    assert.equal(t.success, false);
    assert.match(t.stderr, /ValueError: bad value/);
}

export async function test_run_code_env({ sandbox, workdir }) {
    const r = await sandbox.runCode("import os\nprint(os.environ['ANSWER'])", {
        workingDir: workdir, env: { ANSWER: "forty-two" },
    });
    assert.equal(r.stdout, "forty-two\n");
}

export async function test_run_code_timeout_zero_is_the_default({ sandbox, workdir }) {
    // the SDK sends timeout: 0 as it is; 0 means the route's default, never "no limit"
    const r = await sandbox.runCode("print('quick')", { workingDir: workdir, timeout: 0 });
    assert.equal(r.stdout, "quick\n");
}

export async function test_run_code_unknown_language_is_readable({ sandbox, workdir, sdk }) {
    const e = await rejection(sandbox.runCode("x", { language: "klingon", workingDir: workdir }));
    assert.ok(e instanceof sdk.HopxError, String(e));
    assert.equal(e.statusCode, 400);
    assert.equal(e.code, "INVALID_REQUEST");
    assert.match(e.message, /klingon|language/);
    assert.doesNotMatch(e.message, /status code/);
}

export async function test_run_code_background({ sandbox, workdir }) {
    const r = await sandbox.runCodeBackground("import time\ntime.sleep(0.1)\nprint('bg done')", {
        workingDir: workdir, name: "sdk-bg-job",
    });
    assert.match(r.process_id, /^proc_/);
    const done = await waitFor(async () => {
        const p = (await sandbox.listProcesses()).find((x) => x.process_id === r.process_id);
        return p && ["completed", "failed"].includes(p.status) && p;
    }, "the background code to finish");
    assert.equal(done.status, "completed");
    assert.equal(done.name, "sdk-bg-job");
    assert.equal(done.kind, "code");
    assert.equal(done.language, "python");
    assert.equal(done.stdout, "bg done\n");
}
