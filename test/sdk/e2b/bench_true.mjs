// commands.run('true') through E2B's SDK (debug mode, the agent's --e2b-listen) and through
// HopX's SDK (lib/harness.mjs's stand-in control plane), interleaved in one run so both see
// the same machine load. Prints one JSON line: per-SDK median and p90 milliseconds and the
// ratio of the medians (HopX / E2B: > 1 means E2B's path is faster), also with HopX running
// E2B's own command line.
// Env: AGENT_URL, AGENT_SECRET (HopX), E2B_SANDBOX_URL; BENCH_N rounds (default 200).
import { connect } from "../lib/harness.mjs";

process.env.E2B_DEBUG = "true";
const { Sandbox } = await import("e2b");
const n = Number(process.env.BENCH_N || 200);
const e2b = await Sandbox.create({ debug: true });
const hopx = await connect();
const runE2b = () => e2b.commands.run("true");
// E2B's SDK runs every command as `/bin/bash -l -c CMD`: a login shell costs far more than
// the agent's work, so HopX also runs that same line, for the protocols' own difference
const runHopxSame = () => hopx.sandbox.commands.run("/bin/bash -l -c true", { workingDir: process.env.AGENT_WORKDIR });
const runHopx = () => hopx.sandbox.commands.run("true", { workingDir: process.env.AGENT_WORKDIR });
for (let i = 0; i < 10; i++) { await runE2b(); await runHopx(); await runHopxSame(); }   // warm up
const t = { e2b: [], hopx: [], hopx_bash_l: [] };
const order = [["e2b", runE2b], ["hopx", runHopx], ["hopx_bash_l", runHopxSame]];
for (let i = 0; i < n; i++) {
    for (const [k, f] of i % 2 ? order : [...order].reverse()) {
        const s = process.hrtime.bigint();
        await f();
        t[k].push(Number(process.hrtime.bigint() - s) / 1e6);
    }
}
const q = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(p * s.length))]; };
const out = {};
for (const k of Object.keys(t)) out[k] = { median_ms: +q(t[k], 0.5).toFixed(3), p90_ms: +q(t[k], 0.9).toFixed(3) };
out.rounds = n;
out.ratio_hopx_over_e2b = +(out.hopx.median_ms / out.e2b.median_ms).toFixed(3);
out.ratio_same_line = +(out.hopx_bash_l.median_ms / out.e2b.median_ms).toFixed(3);
console.log(JSON.stringify(out));
await hopx.close();
process.exit(0);
