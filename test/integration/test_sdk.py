"""The official HopX TypeScript SDK (@hopx-ai/sdk, pinned in test/sdk/package-lock.json)
against the real agent, through a stand-in control plane on loopback (test/sdk/lib/harness.mjs).

Each section is a file test/sdk/sections/NAME.mjs whose `export async function test_*(ctx)`
functions are collected here, one pytest test each, run as `node test/sdk/run.mjs FILE NAME`
against one agent per section. A section's first line may carry `// agent-flags: --flag ...`
for its agent. scripts/sdk.sh installs the SDK (make test calls it; so does this file when
the SDK is missing)."""
import os
import re
import shutil
import subprocess

import pytest

from conftest import SECRET, Agent

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "../.."))
SDK_DIR = os.path.join(TOP, "test/sdk")
SECTIONS = os.path.join(SDK_DIR, "sections")
TEST_RE = re.compile(r"^export\s+async\s+function\s+(test_\w+)", re.M)
FLAGS_RE = re.compile(r"^//\s*agent-flags:(.*)$", re.M)


def _collect():
    cases = []
    for name in sorted(os.listdir(SECTIONS)):
        if name.endswith(".mjs"):
            with open(os.path.join(SECTIONS, name)) as f:
                for t in TEST_RE.findall(f.read()):
                    cases.append(pytest.param(name, t, id=f"{name[:-4]}::{t}"))
    return cases


@pytest.fixture(scope="session")
def sdk_installed():
    assert shutil.which("node"), "node is missing: scripts/deps.sh test installs nodejs"
    subprocess.run([os.path.join(TOP, "scripts/sdk.sh")], check=True)
    return True


@pytest.fixture(scope="session")
def section_agents(tmp_path_factory):
    """One agent per section, started on first use, stopped (and checked) at the end."""
    agents = {}

    def get(section):
        if section not in agents:
            with open(os.path.join(SECTIONS, section)) as f:
                m = FLAGS_RE.search(f.readline())
            flags = m.group(1).split() if m else []
            tmp = tmp_path_factory.mktemp("sdk-" + section[:-4])
            agents[section] = Agent(*flags, tmp=tmp)
        return agents[section]

    yield get
    for a in agents.values():
        rc = a.stop()
        assert rc == 0, f"agent exited {rc}; log:\n{a.log()[-3000:]}"
        report = a.sanitizer_report()
        assert report is None, f"sanitizer report in the agent log:\n{report}"


@pytest.mark.parametrize("section,name", _collect())
def test_sdk(sdk_installed, section_agents, section, name):
    agent = section_agents(section)
    env = dict(os.environ, AGENT_URL=f"http://127.0.0.1:{agent.port}", AGENT_SECRET=SECRET,
               AGENT_WORKDIR=agent.workdir, SDK_TEST_TIMEOUT="120")
    r = subprocess.run(["node", "run.mjs", os.path.join("sections", section), name], cwd=SDK_DIR,
                       env=env, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0 and r.stdout.strip().endswith("ok"), \
        f"{section} {name} failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}"
