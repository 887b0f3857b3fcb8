// E2B's official npm SDK (e2b, pinned in test/sdk/package-lock.json) against the agent's
// --e2b-listen port in the SDK's debug mode (no E2B cloud is contacted): node run.mjs [name...]
// runs the cases of cases.mjs (all when none is named) and prints one line per case,
// "RESULT <name> ok" or "RESULT <name> fail <message>" (test/integration/test_e2b.py reads them).
// Env: E2B_SANDBOX_URL (the agent's E2B address), E2B_WORK (a directory the cases may use).
import * as cases from "./cases.mjs";

process.env.E2B_DEBUG = "true";
const { Sandbox } = await import("e2b");
const names = process.argv.slice(2).length ? process.argv.slice(2)
    : Object.keys(cases).filter((k) => k.startsWith("test_"));
const limit = Number(process.env.SDK_TEST_TIMEOUT || 120) * 1000;
const sbx = await Sandbox.create({ debug: true });
let failed = 0;
for (const name of names) {
    const fn = cases[name];
    try {
        if (typeof fn !== "function") throw new Error(`no case ${name}`);
        let timer;
        await Promise.race([
            fn(sbx, process.env.E2B_WORK),
            new Promise((_, no) => { timer = setTimeout(() => no(new Error(`took over ${limit / 1000}s`)), limit); }),
        ]);
        clearTimeout(timer);
        console.log(`RESULT ${name} ok`);
    } catch (e) {
        failed++;
        const msg = (e && e.stack ? e.stack : String(e)).replace(/\n/g, " | ");
        console.log(`RESULT ${name} fail ${e && e.constructor ? e.constructor.name : ""}: ${msg}`);
    }
}
process.exit(failed ? 1 : 0);
