// sandbox.terminal (WS /terminal): connect, sendInput, resize, output() until the exit message.
// The SDK's receive() keeps one message per TCP read; the agent spaces frames for it, so
// every output and the exit arrive here. Each input waits for the previous one's output.
import assert from "node:assert/strict";
import { waitFor } from "../lib/harness.mjs";

async function shell({ sandbox, workdir }) {
    // a HOME without dotfiles: a login shell is up in milliseconds, not after a .bashrc
    await sandbox.env.update({ HOME: workdir });
    const ws = await sandbox.terminal.connect();
    const seen = { text: "", messages: [] };
    seen.done = (async () => {
        for await (const m of sandbox.terminal.output(ws)) {
            seen.messages.push(m);
            if (m.type === "output") seen.text += m.data;
        }
    })();
    return { ws, seen };
}

export async function test_terminal_runs_commands_and_exits(ctx) {
    const term = ctx.sandbox.terminal;
    const { ws, seen } = await shell(ctx);
    term.sendInput(ws, "echo sdk-$((6*7)); tty\r");
    await waitFor(() => seen.text.includes("sdk-42") && seen.text.includes("/dev/pts/"),
                  "the command's output");
    term.resize(ws, 100, 40);
    term.sendInput(ws, "stty size\r");
    await waitFor(() => seen.text.includes("40 100"), "the new size");
    term.sendInput(ws, "exit 5\r");
    await seen.done;
    assert.deepEqual(seen.messages[seen.messages.length - 1], { type: "exit", code: 5 });
    // the shell was a process record like any other: finished, with its exit code
    const procs = await ctx.sandbox.listProcesses();
    const mine = procs.find((p) => p.name === "terminal" && p.exit_code === 5);
    assert.ok(mine && mine.status === "failed",
              JSON.stringify(procs.map((p) => [p.name, p.status, p.exit_code])));
}

export async function test_terminal_ctrl_c(ctx) {
    const term = ctx.sandbox.terminal;
    const { ws, seen } = await shell(ctx);
    term.sendInput(ws, "echo up\r");
    await waitFor(() => seen.text.includes("up\r\n"), "the shell");
    term.sendInput(ws, "sleep 100; echo never-$((1+1))\r");
    await waitFor(async () => {
        const ps = await ctx.sandbox.listSystemProcesses();
        return ps.some((p) => p.cmdline === "sleep 100" || p.command === "sleep 100");
    }, "sleep to start");
    term.sendInput(ws, "\x03");
    await waitFor(() => seen.text.includes("^C"), "the interrupt's echo");
    term.sendInput(ws, "echo back-$((3+4))\r");
    await waitFor(() => seen.text.includes("back-7"), "the prompt back after ^C");
    assert.ok(!seen.text.includes("never-2"));
    term.sendInput(ws, "exit\r");
    await seen.done;
}
