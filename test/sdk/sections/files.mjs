// sandbox.files: read, write, writeBytes, readBytes, list, exists, upload, remove, mkdir,
// download, and the errors a user sees (FileNotFoundError, FileOperationError).
import assert from "node:assert/strict";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { rejection } from "../lib/harness.mjs";

export async function test_files_write_read_text({ sandbox, workdir }) {
    const p = `${workdir}/sdk/hello.py`;
    await sandbox.files.write(p, 'print("héllo")\n', { mode: "0755" });
    assert.equal(await sandbox.files.read(p), 'print("héllo")\n');
    const r = await sandbox.commands.run(`stat -c %a ${p} && python3 ${p} || sh -c 'echo no python'`,
                                         { workingDir: workdir });
    assert.match(r.stdout, /^755\n/);
}

export async function test_files_write_bytes_read_bytes_download({ sandbox, workdir }) {
    const data = crypto.randomBytes(300000);
    const p = `${workdir}/sdk/blob.bin`;
    await sandbox.files.writeBytes(p, data);
    assert.ok(data.equals(await sandbox.files.readBytes(p)));
    assert.ok(data.equals(await sandbox.files.download(p)));
}

export async function test_files_list_exists_mkdir_remove({ sandbox, workdir }) {
    const d = `${workdir}/sdk-list`;
    await sandbox.files.mkdir(`${d}/sub/deeper`);
    await sandbox.files.write(`${d}/b.txt`, "bb");
    await sandbox.files.write(`${d}/a.txt`, "a");
    const entries = await sandbox.files.list(d);
    assert.deepEqual(entries.map((e) => e.name), ["a.txt", "b.txt", "sub"]);
    const a = entries[0];
    assert.equal(a.size, 1);
    assert.equal(a.isDir, false);
    assert.equal(a.path, `${d}/a.txt`);
    assert.match(a.permissions, /^[r-][w-][x-]/);
    assert.ok(!Number.isNaN(Date.parse(a.modifiedTime)));
    assert.equal(entries[2].isDir, true);
    assert.equal(await sandbox.files.exists(`${d}/a.txt`), true);
    assert.equal(await sandbox.files.exists(`${d}/nope`), false);
    await sandbox.files.remove(d);   // recursive by default
    assert.equal(await sandbox.files.exists(d), false);
}

export async function test_files_upload_from_local({ sandbox, workdir }) {
    // the SDK sends the file part before the path field
    const local = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "sdk-up-")), "data.bin");
    const data = crypto.randomBytes(2 * 1024 * 1024 + 3);
    fs.writeFileSync(local, data);
    try {
        await sandbox.files.upload(local, `${workdir}/sdk/uploaded.bin`);
        assert.ok(data.equals(await sandbox.files.readBytes(`${workdir}/sdk/uploaded.bin`)));
        const left = await sandbox.files.list(workdir);
        assert.ok(!left.some((e) => e.name.startsWith(".sandbox-agent-")), "no temporary file left");
    } finally {
        fs.rmSync(path.dirname(local), { recursive: true, force: true });
    }
}

export async function test_files_missing_is_file_not_found({ sandbox, sdk, workdir }) {
    for (const call of [() => sandbox.files.read(`${workdir}/missing.txt`),
                        () => sandbox.files.list(`${workdir}/missing-dir`),
                        () => sandbox.files.remove(`${workdir}/missing`)]) {
        const e = await rejection(call());
        assert.ok(e instanceof sdk.FileNotFoundError, `${e.name}: ${e.message}`);
        assert.match(e.message, /not found/);
    }
    // readBytes asks axios for an arraybuffer, so SDK 0.5.1 cannot read the JSON error
    // body: it raises a plain APIError with the status (the agent's body is the same)
    const e = await rejection(sandbox.files.readBytes(`${workdir}/missing.bin`));
    assert.ok(e instanceof sdk.HopxError || e instanceof Error, `${e.name}: ${e.message}`);
    assert.equal(e.statusCode, 404);
}

export async function test_files_binary_read_as_text_names_base64({ sandbox, sdk, workdir }) {
    await sandbox.files.writeBytes(`${workdir}/sdk/bin.dat`, Buffer.from([0xff, 0xfe, 0x00, 0x80]));
    const e = await rejection(sandbox.files.read(`${workdir}/sdk/bin.dat`));
    assert.ok(e instanceof sdk.FileOperationError, `${e.name}: ${e.message}`);
    assert.match(e.message, /encoding=base64/);
}

export async function test_files_overwrite_false_conflicts({ sandbox, sdk, workdir }) {
    const p = `${workdir}/sdk/keep.txt`;
    await sandbox.files.write(p, "first");
    const e = await rejection(sandbox.files.write(p, "second", { overwrite: false }));
    assert.ok(e instanceof sdk.APIError, `${e.name}: ${e.message}`);
    assert.equal(e.code, "FILE_ALREADY_EXISTS");
    assert.equal(await sandbox.files.read(p), "first");
}
