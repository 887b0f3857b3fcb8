// sandbox.env: getAll/get (GET /env), setAll (PUT), set/update (PATCH merge), delete
// (the SDK's own getAll + setAll) and DELETE /env/{key} through the SDK's HTTP client.
import assert from "node:assert/strict";

export async function test_env_set_get_and_seen_by_commands({ sandbox, workdir }) {
    await sandbox.env.set("SDK_ONE", "1");
    assert.equal(await sandbox.env.get("SDK_ONE"), "1");
    const r = await sandbox.commands.run("echo $SDK_ONE", { workingDir: workdir });
    assert.equal(r.stdout, "1\n");
}

export async function test_env_update_merges({ sandbox }) {
    await sandbox.env.set("SDK_KEEP", "kept");
    const all = await sandbox.env.update({ SDK_A: "a", SDK_B: "b c" });
    assert.equal(all.SDK_A, "a");
    assert.equal(all.SDK_B, "b c");
    assert.equal(all.SDK_KEEP, "kept");
    assert.equal((await sandbox.env.getAll()).SDK_B, "b c");
}

export async function test_env_set_all_replaces_and_delete({ sandbox, workdir }) {
    const before = await sandbox.env.getAll();
    try {
        // PATH stays: a process always starts with one (the default when nothing sets it)
        const now = await sandbox.env.setAll({ SDK_ONLY: "x", SDK_GONE: "y" });
        assert.deepEqual(Object.keys(now).sort(), ["PATH", "SDK_GONE", "SDK_ONLY"]);
        await sandbox.env.delete("SDK_GONE");
        const left = await sandbox.env.getAll();
        assert.deepEqual(Object.keys(left).sort(), ["PATH", "SDK_ONLY"]);
        assert.equal(left.SDK_ONLY, "x");
        const r = await sandbox.commands.run("echo \"[$SDK_ONLY][$SDK_GONE]\"", { workingDir: workdir });
        assert.equal(r.stdout, "[x][]\n");
    } finally {
        await sandbox.env.setAll(before);
    }
}

export async function test_env_delete_one_key_route({ sandbox }) {
    await sandbox.env.update({ SDK_DEL: "1", SDK_STAYS: "2" });
    // the Python SDK and the docs remove one key with DELETE /env/{key}
    const r = await sandbox.agentClient.delete("/env/SDK_DEL");
    assert.equal(r.env_vars.SDK_DEL, undefined);
    assert.equal(r.env_vars.SDK_STAYS, "2");
    assert.equal(await sandbox.env.get("SDK_DEL"), undefined);
}
