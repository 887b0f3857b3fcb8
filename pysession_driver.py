# The Python session driver: pysession.c embeds this file in the agent's binary (.incbin)
# and hands it to `python3 -u -c BOOT` on descriptor 3 as the first frame; BOOT executes it.
#
# Protocol: frames of a 4-byte big-endian length and UTF-8 JSON, agent -> driver on fd 3
# ({"code", "env"?, "cwd"?}) and driver -> agent on fd 4 ({"ready": true, ...} once, then
# one reply per code frame). Both are moved to high close-on-exec descriptors first, so user
# code, its prints, os.write(1, ...) and its subprocesses never touch them: fds 1 and 2 are
# pipes the agent reads as the call's stdout and stderr, and a reply is sent only after
# sys.stdout/sys.stderr were flushed, so whatever the agent drains from those pipes when
# the reply arrives is all of the call's output.
#
# SIGINT (the agent's timeout) raises KeyboardInterrupt only while user code runs; between
# calls it is ignored, so a late interrupt never kills the driver. Stdlib only; when IPython
# is importable its InteractiveShell turns magics (%timeit, !ls) into Python first.
import sys

_cwd_entry = sys.path.pop(0) if sys.path and sys.path[0] == "" else None
# the driver's own imports come from the standard library, never from a user's json.py in
# the working directory; the entry goes back for user code (as `python3 -c` has it)
import ast
import base64
import builtins
import fcntl
import importlib.util
import io
import json
import linecache
import os
import signal
import traceback
import types

if _cwd_entry is not None:
    sys.path.insert(0, _cwd_entry)

CMD = fcntl.fcntl(3, fcntl.F_DUPFD_CLOEXEC, 200)
REP = fcntl.fcntl(4, fcntl.F_DUPFD_CLOEXEC, 200)
os.close(3)
os.close(4)

MAIN_PID = os.getpid()
DRIVER = "<sandbox-agent>"   # the filename BOOT compiled this file under
MIME = (("image/png", "_repr_png_", "png"), ("image/jpeg", "_repr_jpeg_", "jpeg"),
        ("image/svg+xml", "_repr_svg_", "svg"), ("text/html", "_repr_html_", "html"),
        ("text/markdown", "_repr_markdown_", "markdown"), ("text/latex", "_repr_latex_", "latex"),
        ("application/json", "_repr_json_", "json"))
SHORT = {m: s for m, _, s in MIME}

state = {"busy": False, "count": 0, "outputs": None, "shown": set()}


def on_sigint(signum, frame):
    if state["busy"]:
        raise KeyboardInterrupt


signal.signal(signal.SIGINT, on_sigint)


def read_exact(n):
    data = b""
    while len(data) < n:
        chunk = os.read(CMD, n - len(data))
        if not chunk:
            os._exit(0)   # the agent closed the pipe: the session is over
        data += chunk
    return data


def send(obj):
    if os.getpid() != MAIN_PID:
        os._exit(0)   # a fork of the user's that returned here: only the interpreter talks
    data = json.dumps(obj, ensure_ascii=False, default=repr).encode("utf-8", "replace")
    frame = len(data).to_bytes(4, "big") + data
    while frame:
        n = os.write(REP, frame)
        frame = frame[n:]


# ---- rich outputs ----

def encode(mime, value):
    if mime in ("image/png", "image/jpeg") and isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if mime == "application/json":
        json.dumps(value)   # raises unless it can travel as JSON
        return value
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def is_figure(obj):
    return type(obj).__name__ == "Figure" and type(obj).__module__.startswith("matplotlib")


def figure_png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def bundle(obj):
    """The rich forms obj offers (mime -> data), as IPython's formatters find them."""
    data = {}
    if isinstance(obj, type):
        return data   # a class's _repr_html_ is an unbound function, not a rendering
    if is_figure(obj):
        state["shown"].add(id(obj))
        data["image/png"] = figure_png(obj)
        return data
    mb = getattr(obj, "_repr_mimebundle_", None)
    if callable(mb):
        try:
            got = mb()
            if isinstance(got, tuple):
                got = got[0]
            for mime, value in (got or {}).items():
                if mime in SHORT:
                    data[mime] = encode(mime, value)
        except Exception:
            pass
    for mime, meth, _ in MIME:
        f = getattr(obj, meth, None)
        if mime in data or not callable(f):
            continue
        try:
            value = f()
            if isinstance(value, tuple):   # (data, metadata)
                value = value[0]
            if value is not None:
                data[mime] = encode(mime, value)
        except Exception:
            pass
    return data


def publish(data):
    rich = {m: v for m, v in data.items() if m in SHORT}
    if rich:
        state["outputs"].append({"type": next(iter(rich)), "data": rich})


def display(*objs, **kwargs):
    """display() as in IPython: rich forms are outputs, plain ones are printed."""
    for obj in objs:
        data = bundle(obj)
        if data:
            publish(data)
        else:
            print(repr(obj))


def capture_figures():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        for num in plt.get_fignums():
            fig = plt.figure(num)
            if id(fig) not in state["shown"]:
                publish({"image/png": figure_png(fig)})
        plt.close("all")
    except Exception:
        pass


# A matplotlib backend (MPLBACKEND=module://sandbox_agent_mpl, set by the agent unless the
# user chose one): Agg's canvases, and show() turns the open figures into outputs in order.
# Made when matplotlib asks for it, so a session that never plots never imports matplotlib.
class MplBackendFinder:
    def find_spec(self, name, path=None, target=None):
        if name != "sandbox_agent_mpl":
            return None
        return importlib.util.spec_from_loader(name, self)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        from matplotlib.backends import backend_agg
        module.__dict__.update({k: v for k, v in vars(backend_agg).items()
                                if not k.startswith("__")})
        module.show = lambda *a, **k: capture_figures()


sys.meta_path.append(MplBackendFinder())


# ---- the user's namespace ----

main = types.ModuleType("__main__")
main.__dict__["__builtins__"] = builtins
sys.modules["__main__"] = main
ns = main.__dict__
if not hasattr(builtins, "display"):
    builtins.display = display

shell = None
try:
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    cfg = Config()
    cfg.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=cfg, user_module=main)
    shell.display_pub.publish = lambda data, metadata=None, *a, **k: publish(data)
    builtins.display = display
except Exception:
    shell = None


def error_of(e):
    """{name, value, traceback} without the driver's own frames (its SIGINT handler's too)."""
    te = traceback.TracebackException(type(e), e, e.__traceback__)
    te.stack = traceback.StackSummary.from_list(
        [f for f in te.stack if f.filename != DRIVER])
    return {"name": type(e).__name__, "value": str(e), "traceback": "".join(te.format())}


AWAIT = getattr(ast, "PyCF_ALLOW_TOP_LEVEL_AWAIT", 0)   # `await` at the top of a cell
CO_COROUTINE = 0x80
aio = {"loop": None}


def run_code(code_obj):
    """Runs compiled cell code; code that awaits runs on the session's own event loop."""
    if not code_obj.co_flags & CO_COROUTINE:
        return eval(code_obj, ns)
    import asyncio
    if aio["loop"] is None or aio["loop"].is_closed():
        aio["loop"] = asyncio.new_event_loop()
    return aio["loop"].run_until_complete(eval(code_obj, ns))


def quiet(code):
    """The last line ends in ';' (a comment after it allowed)."""
    lines = [line for line in code.rstrip().splitlines() if line.strip()]
    return bool(lines) and lines[-1].split("#")[0].rstrip().endswith(";")


def run_cell(code, filename):
    """Runs code as a REPL cell. Returns the value of a final expression (or None)."""
    if shell is not None:
        code = shell.transform_cell(code)
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    run_code(compile(tree, filename, "exec", flags=AWAIT))
    if last is None:
        return None
    if quiet(code):   # `plt.plot(x);` as in IPython: evaluated, not shown
        run_code(compile(last, filename, "eval", flags=AWAIT))
        return None
    return run_code(compile(last, filename, "eval", flags=AWAIT))


def flush():
    for f in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            f.flush()
        except Exception:
            pass


def call(msg):
    state["count"] += 1
    state["outputs"] = []
    state["shown"] = set()
    reply = {"execution_count": state["count"], "result": None, "error": None}
    try:
        state["busy"] = True
        if msg.get("env"):
            os.environ.update(msg["env"])
        if msg.get("cwd"):
            os.chdir(msg["cwd"])
        value = run_cell(msg.get("code", ""), "<cell-%d>" % state["count"])
        if value is not None:
            ns["_"] = value
            data = bundle(value)
            if data:
                publish(data)
            reply["result"] = repr(value)
        capture_figures()
        state["busy"] = False
    except BaseException as e:   # SystemExit and KeyboardInterrupt too: the session goes on
        state["busy"] = False
        reply["error"] = error_of(e)
        try:
            sys.stderr.write(reply["error"]["traceback"])
        except Exception:
            pass
    flush()
    reply["outputs"] = state["outputs"]
    return reply


def main_loop():
    send({"ready": True, "ipython": shell is not None, "pid": os.getpid(),
          "python": sys.version.split()[0]})
    while True:
        size = int.from_bytes(read_exact(4), "big")
        try:
            msg = json.loads(read_exact(size).decode("utf-8"))
        except ValueError as e:
            send({"execution_count": state["count"], "result": None, "outputs": [],
                  "error": {"name": "ProtocolError", "value": str(e), "traceback": ""}})
            continue
        reply = call(msg)
        try:
            send(reply)
        except (TypeError, ValueError) as e:   # an output that does not serialize
            reply["outputs"] = []
            reply["error"] = {"name": type(e).__name__, "value": str(e), "traceback": ""}
            send(reply)


main_loop()
