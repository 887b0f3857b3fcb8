// Cases for run.mjs: each gets the SDK's Sandbox (debug mode, pointed at the agent) and a
// scratch directory. They wait for states with generous deadlines, never for fixed times.
import assert from "node:assert/strict";
import { CommandExitError } from "e2b";

async function until(pred, what, ms = 30000) {
    const end = Date.now() + ms;
    for (;;) {
        if (await pred()) return;
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 20));
    }
}

export async function test_run_output(sbx) {
    const out = [], err = [];
    const r = await sbx.commands.run("echo hello; echo oops >&2; exit 0", {
        onStdout: (d) => out.push(d), onStderr: (d) => err.push(d),
    });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, "hello\n");
    assert.equal(r.stderr, "oops\n");
    assert.equal(out.join(""), "hello\n");
    assert.equal(err.join(""), "oops\n");
}

export async function test_live_callbacks_and_stdin(sbx) {
    // the first line arrives while the command still waits for its input: live, not at the end
    const out = [];
    const h = await sbx.commands.run("echo first; read x; echo got $x", {
        background: true, stdin: true, onStdout: (d) => out.push(d),
    });
    await until(() => out.join("").includes("first"), "the first line before any input");
    await sbx.commands.sendStdin(h.pid, "ada\n");
    const r = await h.wait();
    assert.equal(r.stdout, "first\ngot ada\n");
}

export async function test_close_stdin(sbx) {
    const h = await sbx.commands.run("wc -c", { background: true, stdin: true });
    await sbx.commands.sendStdin(h.pid, "12345");
    await sbx.commands.closeStdin(h.pid);
    const r = await h.wait();
    assert.equal(r.stdout.trim(), "5");
}

export async function test_exit_code_and_status(sbx) {
    await assert.rejects(sbx.commands.run("echo partial; exit 3"), (e) => {
        assert.ok(e instanceof CommandExitError, `${e}`);
        assert.equal(e.exitCode, 3);
        assert.equal(e.error, "exit status 3");
        assert.equal(e.stdout, "partial\n");
        return true;
    });
}

export async function test_envs_cwd(sbx, work) {
    const r = await sbx.commands.run("echo $FOO; pwd", { envs: { FOO: "bar baz" }, cwd: work });
    assert.equal(r.stdout, `bar baz\n${work}\n`);
}

export async function test_kill_and_signal_status(sbx) {
    const h = await sbx.commands.run("sleep 60", { background: true });
    assert.equal(await sbx.commands.kill(h.pid), true);
    await assert.rejects(h.wait(), (e) => {
        assert.equal(e.exitCode, -1);
        assert.equal(e.error, "signal: killed");
        return true;
    });
    assert.equal(await sbx.commands.kill(999999), false);
}

export async function test_list(sbx) {
    // (the JS SDK sends no tag on start; tags are tested over raw Connect in test_e2b.py)
    const h = await sbx.commands.run("sleep 60", { background: true });
    const l = await sbx.commands.list();
    const me = l.find((p) => p.pid === h.pid);
    assert.ok(me, JSON.stringify(l));
    assert.equal(me.cmd, "/bin/bash");
    assert.deepEqual(me.args, ["-l", "-c", "sleep 60"]);
    await h.kill();
    await until(async () => !(await sbx.commands.list()).some((p) => p.pid === h.pid), "gone from the list");
}

export async function test_connect(sbx) {
    const h = await sbx.commands.run("read x; echo after-connect; sleep 0.2; echo $x", {
        background: true, stdin: true,
    });
    const seen = [];
    const c = await sbx.commands.connect(h.pid, { onStdout: (d) => seen.push(d) });
    await sbx.commands.sendStdin(h.pid, "later\n");
    const r = await c.wait();
    assert.equal(seen.join(""), "after-connect\nlater\n");
    assert.equal(r.exitCode, 0);
    await assert.rejects(sbx.commands.connect(999999), /not found|999999/i);
}

export async function test_timeout_kills(sbx) {
    await assert.rejects(sbx.commands.run("sleep 30", { timeoutMs: 1000 }));
    await until(async () => !(await sbx.commands.list()).some((p) => p.args?.[2] === "sleep 30"),
        "the timed-out command to end");
}

export async function test_output_volume(sbx) {
    let n = 0;
    const r = await sbx.commands.run("head -c 300000 /dev/zero | tr '\\0' x", {
        onStdout: (d) => { n += d.length; },
    });
    assert.equal(r.stdout.length, 300000);
    assert.equal(n, 300000);
}

export async function test_pty_resize(sbx) {
    let text = "";
    const dec = new TextDecoder();
    const t = await sbx.pty.create({ cols: 80, rows: 24, onData: (d) => { text += dec.decode(d, { stream: true }); } });
    const enc = new TextEncoder();
    await sbx.pty.sendInput(t.pid, enc.encode("stty size\n"));
    await until(() => text.includes("24 80"), "stty size 24 80");
    await sbx.pty.resize(t.pid, { cols: 100, rows: 30 });
    await sbx.pty.sendInput(t.pid, enc.encode("stty size; echo $TERM\n"));
    await until(() => text.includes("30 100"), "stty size 30 100 after the resize");
    await until(() => text.includes("xterm-256color"), "TERM");
    await sbx.pty.sendInput(t.pid, enc.encode("exit 0\n"));
    const r = await t.wait();
    assert.equal(r.exitCode, 0);
}

export async function test_pty_kill(sbx) {
    const t = await sbx.pty.create({ cols: 80, rows: 24, onData: () => {} });
    assert.equal(await sbx.pty.kill(t.pid), true);
    await assert.rejects(t.wait(), (e) => e.exitCode === -1);
}

export async function test_files_text_and_bytes(sbx, work) {
    const p = `${work}/dir/sub/hello.txt`;
    const info = await sbx.files.write(p, "héllo\n");
    assert.equal(info.path, p);
    assert.equal(info.name, "hello.txt");
    assert.equal(await sbx.files.read(p), "héllo\n");
    const all = new Uint8Array(256).map((_, i) => i);
    await sbx.files.write(`${work}/bytes.bin`, all);
    const back = await sbx.files.read(`${work}/bytes.bin`, { format: "bytes" });
    assert.deepEqual(Buffer.from(back), Buffer.from(all));
    const empty = await sbx.files.write(`${work}/empty`, "");
    assert.equal(await sbx.files.read(empty.path), "");
    await assert.rejects(sbx.files.read(`${work}/missing`), /not.*exist|not found/i);
}

export async function test_files_several(sbx, work) {
    const files = [0, 1, 2].map((i) => ({ path: `${work}/multi/f${i}.txt`, data: `content ${i}` }));
    const infos = await sbx.files.write(files);
    assert.equal(infos.length, 3);
    for (let i = 0; i < 3; i++) {
        assert.equal(infos[i].path, files[i].path);
        assert.equal(await sbx.files.read(files[i].path), `content ${i}`);
    }
}

export async function test_files_gzip(sbx, work) {
    // the SDK compresses with CompressionStream('gzip') and sends Content-Encoding: gzip
    const text = "gzip upload ".repeat(5000) + "é\n";
    const info = await sbx.files.write(`${work}/gz/one.txt`, text, { gzip: true });
    assert.equal(info.path, `${work}/gz/one.txt`);
    assert.equal(await sbx.files.read(info.path), text);
    const all = new Uint8Array(70000).map((_, i) => (i * 7919) & 255);
    await sbx.files.write(`${work}/gz/bytes.bin`, all, { gzip: true });
    const back = await sbx.files.read(`${work}/gz/bytes.bin`, { format: "bytes", gzip: true });
    assert.deepEqual(Buffer.from(back), Buffer.from(all));
    const files = [0, 1, 2].map((i) => ({ path: `${work}/gz/m${i}.txt`, data: `gz content ${i}` }));
    const infos = await sbx.files.writeFiles(files, { gzip: true });
    assert.equal(infos.length, 3);
    for (const f of files)
        assert.equal(await sbx.files.read(f.path), f.data);
}

export async function test_files_list_exists_info(sbx, work) {
    await sbx.files.write(`${work}/ls/a.txt`, "aaa");
    await sbx.files.write(`${work}/ls/d/b.txt`, "b");
    const one = await sbx.files.list(`${work}/ls`);
    assert.deepEqual(one.map((e) => e.name).sort(), ["a.txt", "d"]);
    const two = await sbx.files.list(`${work}/ls`, { depth: 2 });
    assert.deepEqual(two.map((e) => e.path).sort(), [`${work}/ls/a.txt`, `${work}/ls/d`, `${work}/ls/d/b.txt`]);
    assert.equal(await sbx.files.exists(`${work}/ls/a.txt`), true);
    assert.equal(await sbx.files.exists(`${work}/ls/nope`), false);
    const f = await sbx.files.getInfo(`${work}/ls/a.txt`);
    assert.equal(f.type, "file");
    assert.equal(f.size, 3);
    assert.equal(f.mode, 0o644);
    assert.equal(f.permissions, "-rw-r--r--");
    assert.ok(f.modifiedTime instanceof Date);
    const d = await sbx.files.getInfo(`${work}/ls/d`);
    assert.equal(d.type, "dir");
    assert.match(d.permissions, /^drwx/);
}

export async function test_makedir_rename_remove(sbx, work) {
    assert.equal(await sbx.files.makeDir(`${work}/mk/a/b`), true);
    assert.equal(await sbx.files.makeDir(`${work}/mk/a/b`), false);
    await sbx.files.write(`${work}/mk/a/b/f`, "x");
    const moved = await sbx.files.rename(`${work}/mk/a/b/f`, `${work}/mk/g/f2`);
    assert.equal(moved.path, `${work}/mk/g/f2`);
    assert.equal(await sbx.files.exists(`${work}/mk/a/b/f`), false);
    await sbx.files.remove(`${work}/mk`);
    assert.equal(await sbx.files.exists(`${work}/mk`), false);
}

export async function test_watch_dir(sbx, work) {
    await sbx.files.makeDir(`${work}/w`);
    const events = [];
    const h = await sbx.files.watchDir(`${work}/w`, (e) => events.push(e));
    await sbx.files.write(`${work}/w/new.txt`, "1");
    await until(() => events.some((e) => e.name === "new.txt"), "an event for new.txt");
    await sbx.files.remove(`${work}/w/new.txt`);
    await until(() => events.some((e) => e.name === "new.txt" && e.type === "remove"), "a remove event");
    await h.stop();
}
