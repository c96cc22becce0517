#!/usr/bin/env python3
"""Runs the code blocks of keysmith's user guides (docs/*.md), so what they show works.

    python3 scripts/run-doc-blocks.py [DOC.md ...]   (default: the guides below)

scripts/run-doc-blocks.sh calls it with the artefacts CI built (see there). Each guide
runs as ONE bash script in a fresh temporary directory, its blocks in order, so a block
may use what an earlier one started or wrote (the emulator, a file). The fence's info
string says what happens to a block:

    ```sh                 run (bash -euo pipefail, in the guide's directory)
    ```sh cwd=repo        run from the repository's root (install commands)
    ```python             run with $DOCS_PYTHON (the venv the wheel is installed in)
    ```c                  compiled (-fsyntax-only) against the installed keysmith.h
    ```LANG file=NAME     written to NAME (and checked: TOML and JSON parsed, C compiled by
                          the sh block that builds it)
    ```LANG no-run        checked only: sh by `bash -n`, python by compile(), c by
                          -fsyntax-only, toml/json parsed. For what CI cannot do cheaply:
                          building the wheel from source, `cargo install`
    ```rust               run as a doctest: docs/rust.md is a doc module of the
                          keysmith-examples crate (`cargo test --doc -p keysmith-examples`);
                          this script only checks that the module includes the guide
    ```text               output shown to the reader; not code, nothing to run

Any other language fails the run. The `file=` blocks of docs/lifecycle.md (the template
and the session configuration every guide uses) are written into every guide's directory
first. Two substitutions make a guide runnable beside other runs: the emulator's
documented address 127.0.0.1:8443 becomes a free loopback port, and the documented
install prefix /opt/keysmith becomes a temporary one ($DOCS_PREFIX).
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shlex
import socket
import subprocess
import sys
import tempfile
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
GUIDES = ["docs/lifecycle.md", "docs/cli.md", "docs/c.md", "docs/python.md", "docs/rust.md"]
SHARED = "docs/lifecycle.md"
LANGS = {"sh", "python", "c", "toml", "json", "rust", "text"}
FENCE = re.compile(r"^```(\S*)(.*)$")
MARK = "__KEYSMITH_DOC_BLOCK__"


class Block:
    def __init__(self, doc: str, line: int, lang: str, attrs: dict[str, str], text: str):
        self.doc, self.line, self.lang, self.attrs, self.text = doc, line, lang, attrs, text

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def parse(doc: str) -> list[Block]:
    blocks: list[Block] = []
    lines = (ROOT / doc).read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, rest = m.group(1), m.group(2).split()
        start = i + 1
        i += 1
        body = []
        while i < len(lines) and lines[i] != "```":
            body.append(lines[i])
            i += 1
        if i == len(lines):
            sys.exit(f"{doc}:{start}: unclosed code block")
        i += 1
        attrs = {}
        for a in rest:
            k, _, v = a.partition("=")
            attrs[k] = v
        unknown = set(attrs) - {"file", "no-run", "cwd"}
        if lang not in LANGS or unknown:
            sys.exit(f"{doc}:{start}: code block `{lang} {' '.join(rest)}`: the runner knows "
                     f"{sorted(LANGS)} with file=NAME, no-run, cwd=repo")
        blocks.append(Block(doc, start, lang, attrs, "\n".join(body) + "\n"))
    return blocks


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def substitute(text: str, port: int, prefix: str) -> str:
    return text.replace("127.0.0.1:8443", f"127.0.0.1:{port}").replace("/opt/keysmith", prefix)


def check_data(b: Block, text: str) -> None:
    try:
        if b.lang == "toml":
            tomllib.loads(text)
        elif b.lang == "json":
            json.loads(text)
    except ValueError as e:
        sys.exit(f"{b.where}: {b.lang} does not parse: {e}")


def heredoc(text: str) -> str:
    assert MARK not in text
    return f"<<'{MARK}'\n{text}{MARK}\n"


def script_for(blocks: list[Block], shared: list[Block], port: int, prefix: str) -> str:
    """One bash script running a guide's blocks in order."""
    out = [
        "set -euo pipefail",
        # Whatever a guide started in the background (the emulator) ends with it.
        "trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null || true' EXIT",
        f"docs_dir=$PWD",
    ]
    for b in shared + blocks:
        text = substitute(b.text, port, prefix)
        out.append(f"echo '--- {b.where} ({b.lang} {' '.join(f'{k}={v}' if v else k for k, v in b.attrs.items())})' >&2")
        if "file" in b.attrs:
            check_data(b, text)
            out.append(f"cat > {shlex.quote(b.attrs['file'])} " + heredoc(text))
        elif "no-run" in b.attrs:
            if b.lang == "sh":
                out.append("bash -n " + heredoc(text))
            elif b.lang == "python":
                out.append('"$DOCS_PYTHON" -c "import sys; compile(sys.stdin.read(), \'block\', \'exec\')" ' + heredoc(text))
            elif b.lang == "c":
                out.append('cc -fsyntax-only -Wall -Wextra -Werror $(pkg-config --cflags keysmith) -x c - ' + heredoc(text))
            else:
                check_data(b, text)
        elif b.lang == "sh":
            if b.attrs.get("cwd") == "repo":
                out.append(f"cd {shlex.quote(str(ROOT))}\n{text}cd \"$docs_dir\"")
            else:
                out.append(text)
        elif b.lang == "python":
            out.append('"$DOCS_PYTHON" - ' + heredoc(text))
        elif b.lang == "c":
            out.append('cc -fsyntax-only -Wall -Wextra -Werror $(pkg-config --cflags keysmith) -x c - ' + heredoc(text))
        elif b.lang in ("toml", "json"):
            check_data(b, text)
        # rust: a doctest; text: output.
    return "\n".join(out) + "\n"


def main() -> int:
    docs = sys.argv[1:] or GUIDES
    for need in ("DOCS_PYTHON", "DOCS_PREFIX"):
        if not os.environ.get(need):
            sys.exit(f"run-doc-blocks: {need} is not set (scripts/run-doc-blocks.sh sets it)")
    prefix = os.environ["DOCS_PREFIX"]
    shared = [b for b in parse(SHARED) if "file" in b.attrs]
    lib_rs = (ROOT / "examples/rust/lib.rs").read_text()
    counts = {}
    for doc in docs:
        blocks = parse(doc)
        if any(b.lang == "rust" for b in blocks) and f'include_str!("../../{doc}")' not in lib_rs:
            sys.exit(f"{doc} has rust blocks but examples/rust/lib.rs does not include it as a "
                     "doc module (its doctests would not run)")
        port = free_port()
        script = script_for(blocks, [] if doc == SHARED else shared, port, prefix)
        with tempfile.TemporaryDirectory(prefix="keysmith-doc-") as work:
            print(f"== {doc}: {len(blocks)} code blocks (emulator port {port}, in {work})", flush=True)
            r = subprocess.run(["bash", "-c", script], cwd=work, timeout=600)
            if r.returncode != 0:
                print(f"run-doc-blocks: {doc} failed (exit {r.returncode}); the last '---' line "
                      "above names the block", file=sys.stderr)
                return 1
        counts[doc] = len(blocks)
    print("doc blocks ok: " + ", ".join(f"{d} ({n})" for d, n in counts.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
