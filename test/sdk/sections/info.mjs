// getHealth, isHealthy, getAgentInfo, getMetricsSnapshot/getAgentMetrics,
// listSystemProcesses, cache.stats/clear.
import assert from "node:assert/strict";

export async function test_health({ sandbox }) {
    const h = await sandbox.getHealth();
    assert.equal(h.status, "ok");
    assert.equal(typeof h.features, "object");
    assert.equal(await sandbox.isHealthy(), true);
}

export async function test_agent_info({ sandbox, agentUrl }) {
    const i = await sandbox.getAgentInfo();
    assert.equal(i.agent, "sandbox-agent");
    assert.match(i.version, /^\d+\.\d+\.\d+/);
    assert.equal(agentUrl.endsWith(i.listen.split(":").pop()), true);
    assert.ok(i.endpoints.includes("POST /commands/run"), i.endpoints.join(", "));
}

export async function test_metrics({ sandbox, workdir }) {
    await sandbox.commands.run("true", { workingDir: workdir });
    const m = await sandbox.getMetricsSnapshot();
    assert.equal(typeof m.uptime_seconds, "number");
    assert.ok(m.total_executions >= 1, JSON.stringify(m));
    assert.ok(m.requests_total >= 1, JSON.stringify(m));
    assert.equal(typeof m.system, "object");
    const again = await sandbox.getAgentMetrics();
    assert.ok(again.requests_total > m.requests_total);
}

export async function test_system_processes({ sandbox }) {
    const ps = await sandbox.listSystemProcesses();
    assert.ok(Array.isArray(ps) && ps.length > 0);
    const me = ps.find((p) => p.name === "sandbox-agent");
    assert.ok(me, ps.map((p) => p.name).join(" "));
    for (const k of ["pid", "ppid", "name", "command", "state", "rss_kb", "cpu_percent"])
        assert.ok(k in me, `${k} missing in ${JSON.stringify(me)}`);
    assert.equal(typeof me.cpu_percent, "number");
}

export async function test_cache_stats_and_clear({ sandbox }) {
    const s = await sandbox.cache.stats();
    assert.equal(s.cache.size, 0);
    const c = await sandbox.cache.clear();
    assert.equal(c.entries_removed, 0);
}
