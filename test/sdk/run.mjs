// Runs one test of one section: node run.mjs sections/NAME.mjs test_name
// (test/integration/test_sdk.py calls it once per test, with the agent's address in env).
// Prints "ok" and exits 0, or prints the error (with the SDK's code/status) and exits 1.
import path from "node:path";
import { pathToFileURL } from "node:url";
import { connect } from "./lib/harness.mjs";

const [file, name] = process.argv.slice(2);
const mod = await import(pathToFileURL(path.resolve(file)).href);
if (!name) {   // no test named: list the section's tests
    console.log(Object.keys(mod).filter((k) => k.startsWith("test_")).join("\n"));
    process.exit(0);
}
const fn = mod[name];
if (typeof fn !== "function") {
    console.error(`no test ${name} in ${file}`);
    process.exit(2);
}
const limit = Number(process.env.SDK_TEST_TIMEOUT || 120) * 1000;
let ctx;
try {
    ctx = await connect(mod.connectOptions || {});
    await Promise.race([
        fn(ctx),
        new Promise((_, no) => setTimeout(() => no(new Error(`test took over ${limit / 1000}s`)), limit).unref()),
    ]);
    console.log("ok");
    await ctx.close();
    process.exit(0);
} catch (e) {
    console.error(e && e.stack ? e.stack : e);
    if (e && typeof e === "object")
        console.error(JSON.stringify({ name: e.name, code: e.code, statusCode: e.statusCode, message: e.message }));
    if (ctx) await ctx.close().catch(() => {});
    process.exit(1);
}
