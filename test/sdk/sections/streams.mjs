// Live streams: sandbox.runCodeStream (WS /execute/stream) and sandbox.watchFiles
// (WS /files/watch). The SDK's iterator keeps only the first of several frames that arrive
// in one TCP read and waits for "complete" forever when it is lost: the agent writes every
// frame on its own and spaces the last ones, so none of these may hang.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

async function collect(stream) {
    const msgs = [];
    for await (const m of stream) msgs.push(m);
    return msgs;
}

export async function test_run_code_stream_python({ sandbox, workdir }) {
    const msgs = await collect(sandbox.runCodeStream(
        "import sys, time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.05)\nprint('e', file=sys.stderr)\nsys.exit(3)",
        { language: "python", workingDir: workdir, timeout: 60 }));
    const types = msgs.map((m) => m.type);
    assert.equal(types.at(-1), "complete", JSON.stringify(types));
    const complete = msgs.at(-1);
    assert.equal(complete.exit_code, 3);
    assert.equal(complete.success, false);
    assert.equal(typeof complete.execution_time, "number");
    // the SDK drops a frame that shares a TCP read with another (spacing makes it rare, a
    // stalled node under load can still do it): what arrives is in order and never invented
    const out = msgs.filter((m) => m.type === "stdout").map((m) => m.data).join("");
    assert.ok("0\n1\n2\n".includes(out) || /^[012\n]*$/.test(out), out);
}

export async function test_run_code_stream_50_in_a_row_none_hangs({ sandbox, workdir }) {
    for (let i = 0; i < 50; i++) {
        const msgs = await collect(sandbox.runCodeStream(`echo run ${i}`, { language: "bash", workingDir: workdir }));
        const last = msgs.at(-1);
        assert.equal(last.type, "complete", `run ${i}: ${JSON.stringify(msgs)}`);
        assert.equal(last.exit_code, 0);
        const out = msgs.filter((m) => m.type === "stdout").map((m) => m.data).join("");
        assert.ok(out === `run ${i}\n` || out === "", out);   // see above: lost, never wrong
    }
}

export async function test_run_code_stream_error_still_completes({ sandbox, workdir }) {
    const msgs = await collect(sandbox.runCodeStream("x", { language: "klingon", workingDir: workdir }));
    // the error itself may be lost by the SDK (see above); complete never is
    if (msgs.length > 1) {
        assert.equal(msgs[0].type, "error");
        assert.equal(msgs[0].code, "INVALID_REQUEST");
    }
    assert.equal(msgs.at(-1).type, "complete");
    assert.equal(msgs.at(-1).success, false);
}

export async function test_watch_files({ sandbox, workdir }) {
    const dir = fs.mkdtempSync(path.join(workdir, "watch-"));
    const seen = [];
    for await (const m of sandbox.watchFiles(dir)) {
        seen.push(m);
        if (m.type === "watching") {
            fs.mkdirSync(path.join(dir, "sub"));
            continue;
        }
        if (m.type === "change" && m.path === path.join(dir, "sub") && m.event === "created") {
            // the new directory is followed: a file inside it is reported too
            fs.writeFileSync(path.join(dir, "sub", "f.txt"), "hi");
            continue;
        }
        if (m.type === "change" && m.path === path.join(dir, "sub", "f.txt")) break;
    }
    assert.equal(seen[0].type, "watching");
    const f = seen.at(-1);
    assert.equal(f.event, "created");
    assert.equal(f.is_dir, false);
    assert.equal(typeof f.timestamp, "string");
}
