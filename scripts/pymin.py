#!/usr/bin/env python3
"""Shrinks a Python file for embedding: drops comments, docstrings and blank lines and
indents one space a level. Every other token keeps its exact text and the spacing it had on
its line, so the result means the same on any Python 3 (no re-printing from an AST).
Usage: pymin.py < in.py > out.py"""
import ast
import io
import sys
import tokenize

SKIP = (tokenize.COMMENT, tokenize.NL, tokenize.ENCODING)


def logical_lines(src):
    """(depth, tokens) per logical line, depth counted in INDENT levels."""
    depth, line = 0, []
    for tok in tokenize.generate_tokens(io.StringIO(src).readline):
        if tok.type == tokenize.INDENT:
            depth += 1
        elif tok.type == tokenize.DEDENT:
            depth -= 1
        elif tok.type in (tokenize.NEWLINE, tokenize.ENDMARKER):
            if line:
                yield depth, line
            line = []
        elif tok.type not in SKIP:
            line.append(tok)


def text(tokens, rows):
    """The tokens as one line: original spacing within a row, one space across rows."""
    out, prev = [], None
    for tok in tokens:
        if prev is not None:
            if tok.start[0] == prev.end[0]:
                out.append(rows[tok.start[0] - 1][prev.end[1]:tok.start[1]])
            else:
                out.append(" ")
        out.append(tok.string)
        prev = tok
    return "".join(out)


def shape(src):
    """The program's AST without bare strings and `pass`: what must not change."""
    tree = ast.parse(src)
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list):
                setattr(node, field, [n for n in body if not isinstance(n, ast.Pass) and not (
                    isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant)
                    and isinstance(n.value.value, str))])
    return ast.dump(tree)


def main():
    src = sys.stdin.read()
    rows = src.splitlines(keepends=True)
    lines = list(logical_lines(src))
    out = []
    for i, (depth, tokens) in enumerate(lines):
        if len(tokens) == 1 and tokens[0].type == tokenize.STRING:
            # a docstring (or any bare string statement): a no-op, unless it is all its
            # block holds, where it becomes `pass`
            opener = out and out[-1][1].endswith(":") and out[-1][0] < depth
            nxt = lines[i + 1][0] if i + 1 < len(lines) else 0
            if not (opener and nxt < depth):
                continue
            out.append((depth, "pass"))
            continue
        out.append((depth, text(tokens, rows)))
    small = "".join(" " * d + t + "\n" for d, t in out)
    if shape(small) != shape(src):   # a bug here must fail the build, not the sessions
        sys.exit("pymin.py: the shrunk program differs from the original")
    sys.stdout.write(small)


if __name__ == "__main__":
    main()
