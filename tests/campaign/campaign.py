#!/usr/bin/env python3
"""The fault campaign: bad inputs at the CLI, C and Python boundaries, each expected to
give a typed error naming what was wrong (docs/fault-campaign.md).

Run by scripts/fault-campaign.sh, which finds the built artifacts, compiles the C runner
and starts the Entra emulator; this file only needs the standard library (Python 3.11+).

    campaign.py --work DIR --emulator-json JSON --keysmith BIN --c-runner BIN
                --python PY [--short] [--boundary cli,c,python] [--case ID] [-v]

The cases are data: tests/campaign/{cli,c,python}.toml, one [[case]] table each (the
format is at the top of each file). Every case ends as one of:
  pass          the outcome is the expected one
  FAIL          anything else: another exit code / status / exception / reason, a field
                not named, a panic, a crash (signal), a hang (timeout)
  known defect  the case carries known_defect = "..." and did not pass: counted apart,
                does not fail the run (the report lists them)
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import queue
import shutil
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
STANDARD_TEMPLATE = (ROOT / "tests/testkit/templates/standard.toml").read_text()
KIM = "kim@contoso.onmicrosoft.com"
PIN_KEY = "11" * 32
CASE_TIMEOUT = 120.0


# ---- values, patches, fixtures ----

def value(v):
    """A case value: a plain TOML value, or a table standing for one the TOML file cannot
    hold or should not spell out: {repeat = "a", times = N, prefix = "", suffix = ""},
    {hex = "efbbbf"} (bytes), {null = true} (C: a NULL pointer)."""
    if isinstance(v, dict):
        if "repeat" in v:
            return v.get("prefix", "") + v["repeat"] * int(v["times"]) + v.get("suffix", "")
        if "hex" in v:
            return bytes.fromhex(v["hex"].replace(" ", ""))
        if v.get("null"):
            return None
        return {k: value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [value(x) for x in v]
    return v


def patched(base: dict, spec: dict) -> dict:
    """`base` with spec's `set` (dotted path -> value; numeric parts index lists) and
    `delete` (dotted paths) applied."""
    out = copy.deepcopy(base)
    for path, v in spec.get("set", {}).items():
        *parents, last = path.split(".")
        node = out
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        if isinstance(node, list) and int(last) == len(node):
            node.append(value(v))
        elif isinstance(node, list):
            node[int(last)] = value(v)
        else:
            node[last] = value(v)
    for path in spec.get("delete", []):
        *parents, last = path.split(".")
        node = out
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        del node[int(last) if isinstance(node, list) else last]
    return out


def template_text(spec) -> bytes | str:
    """A template from a case: {raw = TEXT} (as given), else the standard test template
    (tests/testkit/templates/standard.toml) as JSON with {set, delete} applied."""
    if spec is None:
        return STANDARD_TEMPLATE
    if isinstance(spec, str):
        return spec
    if "raw" in spec:
        return value(spec["raw"])
    return json.dumps(patched(tomllib.loads(STANDARD_TEMPLATE), spec))


class Fixture:
    """What the cases share: the emulator's connection and the base session config."""

    def __init__(self, emulator: dict, work: Path):
        self.emulator = emulator
        self.work = work

    def connection(self) -> dict:
        e = self.emulator
        return {
            "name": "contoso-entra", "tenant": e["tenant_id"], "client_id": e["client_id"],
            "client_secret": e["client_secret"], "graph_api_version": "beta",
            "login_base": e["base_url"], "graph_base": e["base_url"],
        }

    def config(self, case_dir: Path, spec) -> dict | str | bytes | None:
        """The session config of a case: {raw = TEXT} as given, false for none, else the
        base config (SQLite in the case's folder, the standard template, software keys
        allowed, the emulator's connection) with the spec's set/delete applied;
        `template = {...}` in the spec replaces the loaded template."""
        if spec is False:
            return None
        spec = spec or {}
        if "raw" in spec:
            return value(spec["raw"])
        base = {
            "repository": {"sqlite": str(case_dir / "keysmith.db")},
            "pin_key": PIN_KEY,
            "station": "campaign",
            "idp": [self.connection()],
            "templates": [STANDARD_TEMPLATE],
            "allow_software_keys": True,
        }
        if "template" in spec:
            t = template_text(spec["template"])
            base["templates"] = [t.decode() if isinstance(t, bytes) else t]
        return patched(base, spec)


def as_bytes(x) -> bytes:
    if isinstance(x, bytes):
        return x
    if isinstance(x, (dict, list)):
        return json.dumps(x).encode()
    return str(x).encode()


def contains_all(text: str, wanted) -> list[str]:
    """The expected substrings (a string or a list) missing from `text`."""
    if wanted is None:
        return []
    wanted = [wanted] if isinstance(wanted, str) else wanted
    return [w for w in wanted if w not in text]


# ---- the CLI boundary ----

class CliRunner:
    """Runs the keysmith binary once per case, with --json, stdin from /dev/null (or the
    case's stdin), and checks exit code, kind, reason and the words of the message."""

    def __init__(self, fx: Fixture, keysmith: str):
        self.fx = fx
        self.keysmith = keysmith

    def run_case(self, case: dict) -> tuple[bool, str]:
        d = self.fx.work / "cli" / case["id"]
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        subst = {"@dir": str(d), "@softkey": f"softkey:{d / 'softkey.json'}",
                 "@user": KIM}
        cfg = self.fx.config(d, case.get("config"))
        if cfg is not None:
            ext = case.get("config_ext", "json" if isinstance(cfg, dict) else "toml")
            path = d / f"keysmith.{ext}"
            path.write_bytes(as_bytes(cfg))
            subst["@config"] = str(path)
        if "template" in case:
            t = template_text(case["template"])
            ext = case.get("template_ext",
                           "json" if isinstance(t, str) and t.lstrip().startswith("{") else "toml")
            path = d / f"template.{ext}"
            path.write_bytes(as_bytes(t))
            subst["@template"] = str(path)
        if "csv" in case:
            path = d / "input.csv"
            path.write_bytes(as_bytes(value(case["csv"])))
            subst["@csv"] = str(path)
        for name, text in case.get("files", {}).items():
            (d / name).write_bytes(as_bytes(value(text)))
            # Readable by others whatever the umask (the insecure pin_key_file case).
            (d / name).chmod(0o644)
            subst["@" + name] = str(d / name)

        def argv(args):
            out = [self.keysmith, "--json"]
            if cfg is not None and not case.get("no_config_flag"):
                out += ["--config", subst["@config"]]
            if case.get("device", True) and cfg is not None:
                out += ["--device", subst["@softkey"]]
            for a in args:
                a = value(a)
                for k in sorted(subst, key=len, reverse=True):
                    a = a.replace(k, subst[k])
                out.append(a)
            return out

        env = dict(os.environ)
        env.update(case.get("env", {}))
        for step in case.get("setup", []):
            stdin = value(step.get("stdin"))
            p = subprocess.run(argv(step["args"]), input=as_bytes(stdin) if stdin else None,
                               stdin=None if stdin else subprocess.DEVNULL,
                               capture_output=True, env=env, timeout=CASE_TIMEOUT)
            if p.returncode != 0:
                return False, f"setup {step['args']} exited {p.returncode}: {p.stdout[-400:]!r} {p.stderr[-400:]!r}"
            try:
                out = json.loads(p.stdout.decode().strip().splitlines()[-1])
            except (ValueError, IndexError):
                out = {}
            if isinstance(out, dict):
                for field in ("key_id", "job_id"):
                    if field in out:
                        subst["@" + field] = str(out[field])
        stdin = value(case.get("stdin"))
        started = time.monotonic()
        try:
            p = subprocess.run(argv(case["args"]), input=as_bytes(stdin) if stdin else None,
                               stdin=None if stdin else subprocess.DEVNULL,
                               capture_output=True, env=env,
                               timeout=case.get("timeout", CASE_TIMEOUT))
        except subprocess.TimeoutExpired:
            return False, f"hang: no exit within {case.get('timeout', CASE_TIMEOUT)} s"
        took = time.monotonic() - started
        stdout = p.stdout.decode(errors="replace")
        stderr = p.stderr.decode(errors="replace")
        if p.returncode < 0:
            return False, f"crashed: signal {-p.returncode}; stderr {stderr[-300:]!r}"
        if "panicked at" in stderr:
            return False, f"panic: {stderr[-400:]!r}"
        exp = case["expect"]
        why = []
        if "max_seconds" in exp and took > exp["max_seconds"]:
            why.append(f"took {took:.1f} s (at most {exp['max_seconds']})")
        if exp.get("ok"):
            if p.returncode != 0:
                why.append(f"exit {p.returncode}, expected success: {stdout[-300:]!r} {stderr[-300:]!r}")
            why += [f"output lacks {w!r}" for w in contains_all(stdout, exp.get("output"))]
            return not why, "; ".join(why)
        if p.returncode != exp["exit"]:
            why.append(f"exit {p.returncode}, expected {exp['exit']}")
        err = {}
        for line in reversed(stdout.strip().splitlines()):
            try:
                err = json.loads(line).get("error") or {}
                break
            except (ValueError, AttributeError):
                continue
        if not err:
            why.append(f"no JSON error on stdout: {stdout[-300:]!r} stderr {stderr[-300:]!r}")
        else:
            why += check_error(err, exp)
            if why:
                why.append(f"error {json.dumps(err)[:300]}")
            if err.get("exit_code") is not None and err["exit_code"] != p.returncode \
                    and exp["exit"] != 1:
                why.append(f"error's exit_code {err['exit_code']} is not the exit {p.returncode}")
        return not why, "; ".join(why)


def check_error(err: dict, exp: dict) -> list[str]:
    """kind, reason and message words of a facade error against the expectation."""
    why = []
    if "kind" in exp and err.get("kind") != exp["kind"]:
        why.append(f"kind {err.get('kind')!r}, expected {exp['kind']!r}")
    if "reason" in exp and err.get("reason") != exp["reason"]:
        why.append(f"reason {err.get('reason')!r}, expected {exp['reason']!r}")
    msg = str(err.get("message", ""))
    missing = contains_all(msg, exp.get("message"))
    if missing:
        why.append(f"message {msg[:300]!r} does not name {missing}")
    return why


# ---- the C and Python boundaries: one long-lived runner process, one line per case ----

class BatchRunner:
    """A runner process reading one case per stdin line and answering one line per case.
    A crash or a hang fails that case; the runner is started again for the rest."""

    def __init__(self, argv: list[str], env: dict | None = None):
        self.argv = argv
        self.env = env
        self.proc = None
        self.lines: queue.Queue = queue.Queue()

    def _start(self):
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=self.env, bufsize=0)
        self.lines = queue.Queue()
        self.stderr_tail: list[str] = []
        out, err, q = self.proc.stdout, self.proc.stderr, self.lines

        def read_out():
            for line in out:
                q.put(line.decode(errors="replace"))
            q.put(None)

        def read_err():
            tail = self.stderr_tail
            for line in err:
                tail.append(line.decode(errors="replace"))
                del tail[:-20]

        threading.Thread(target=read_out, daemon=True).start()
        threading.Thread(target=read_err, daemon=True).start()

    def ask(self, line: str, timeout: float) -> tuple[str | None, str]:
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(line.encode() + b"\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        try:
            answer = self.lines.get(timeout=timeout)
        except queue.Empty:
            self.stop()
            return None, f"hang: no answer within {timeout} s"
        if answer is None:
            code = self.proc.wait()
            tail = "".join(self.stderr_tail)[-400:]
            self.proc = None
            if code < 0:
                return None, f"crashed: signal {-code}; stderr {tail!r}"
            return None, f"runner exited {code}; stderr {tail!r}"
        return answer.rstrip("\n"), ""

    def stop(self):
        if self.proc is not None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
            self.proc.wait()
            self.proc = None


class CRunner:
    """The C runner (tests/campaign/c_runner.c): `ID OP ARG...`, tab-separated, each
    argument `-` (NULL) or `x` + hex bytes; answers `ID STATUS x<hex of the
    ks_last_error_json or the result>`."""

    def __init__(self, fx: Fixture, binary: str):
        self.fx = fx
        self.batch = BatchRunner([binary])

    def run_case(self, case: dict) -> tuple[bool, str]:
        d = self.fx.work / "c" / case["id"]
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        cfg = self.fx.config(d, case.get("config"))
        subst = {"@config": json.dumps(cfg) if isinstance(cfg, dict) else cfg,
                 "@softkey": f"softkey:{d / 'softkey.json'}", "@dir": str(d), "@user": KIM}
        fields = [case["id"], case["op"]]
        for a in case.get("args", []):
            a = value(a)
            if isinstance(a, str):
                for k in sorted(subst, key=len, reverse=True):
                    if subst[k] is not None:
                        a = a.replace(k, subst[k] if isinstance(subst[k], str) else subst[k].decode())
                if a == "@config-bytes":
                    a = cfg
            if isinstance(a, dict) and "template" in a:
                a = template_text(a["template"])
            fields.append("-" if a is None else "x" + as_bytes(a).hex())
        answer, why = self.batch.ask("\t".join(fields), case.get("timeout", CASE_TIMEOUT))
        if answer is None:
            return False, why
        parts = answer.split("\t")
        if len(parts) != 3 or parts[0] != case["id"]:
            return False, f"bad runner answer {answer[:200]!r}"
        status = int(parts[1])
        body = bytes.fromhex(parts[2][1:]).decode(errors="replace")
        exp = case["expect"]
        if exp.get("ok"):
            if status != 0:
                return False, f"status {status}, expected KS_OK: {body[:300]}"
            missing = contains_all(body, exp.get("output"))
            return not missing, f"result lacks {missing}: {body[:300]}" if missing else ""
        why = []
        if status != exp["status"]:
            why.append(f"status {status}, expected {exp['status']}")
        try:
            err = json.loads(body) if body else {}
        except ValueError:
            err = {}
            why.append(f"ks_last_error_json is not JSON: {body[:200]!r}")
        if not err and status != 0:
            why.append("no ks_last_error_json")
        if err and "kind" in err and status != 0:
            codes = {"usage": 2, "device": 3, "idp": 4, "repository": 5, "template": 6,
                     "transition": 7, "internal": 9}
            if codes.get(err["kind"]) != status:
                why.append(f"kind {err['kind']} does not match status {status}")
        why += check_error(err, exp) if err else []
        if why and err:
            why.append(f"error {body[:300]}")
        return not why, "; ".join(why)


class PyRunner:
    """The Python runner (tests/campaign/py_runner.py, in the interpreter that has the
    built keysmith module): one JSON case per line, one JSON outcome per line."""

    def __init__(self, fx: Fixture, python: str):
        self.fx = fx
        self.batch = BatchRunner([python, str(HERE / "py_runner.py")])

    def run_case(self, case: dict) -> tuple[bool, str]:
        d = self.fx.work / "python" / case["id"]
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        cfg = self.fx.config(d, case.get("config"))
        if isinstance(cfg, bytes):
            cfg = cfg.decode(errors="surrogateescape")
        msg = {"id": case["id"], "code": case["code"], "setup": case.get("setup", ""),
               "config": cfg, "dir": str(d), "softkey": f"softkey:{d / 'softkey.json'}",
               "user": KIM, "template": STANDARD_TEMPLATE,
               "connection": self.fx.connection()}
        answer, why = self.batch.ask(json.dumps(msg), case.get("timeout", CASE_TIMEOUT))
        if answer is None:
            return False, why
        try:
            out = json.loads(answer)
        except ValueError:
            return False, f"bad runner answer {answer[:200]!r}"
        exp = case["expect"]
        if out.get("setup_error"):
            return False, f"setup failed: {out['setup_error']}"
        if exp.get("ok"):
            if out["outcome"] != "ok":
                return False, f"raised {out.get('class')}: {out.get('message', '')[:300]}"
            return True, ""
        if out["outcome"] == "ok":
            return False, f"no exception (returned {out.get('result', '')[:200]!r}), expected {exp['raises']}"
        why = []
        if exp["raises"] not in out["mro"]:
            why.append(f"raised {out['class']} ({out['message'][:200]!r}), expected {exp['raises']}")
        if "reason" in exp and out.get("reason") != exp["reason"]:
            why.append(f"reason {out.get('reason')!r}, expected {exp['reason']!r}")
        if "kind" in exp and out.get("kind") != exp["kind"]:
            why.append(f"kind {out.get('kind')!r}, expected {exp['kind']!r}")
        missing = contains_all(out["message"], exp.get("message"))
        if missing:
            why.append(f"message {out['message'][:300]!r} does not name {missing}")
        return not why, "; ".join(why)


# ---- the driver ----

def load_cases(boundary: str) -> list[dict]:
    cases = tomllib.loads((HERE / f"{boundary}.toml").read_text())["case"]
    seen = set()
    for c in cases:
        if c["id"] in seen:
            raise SystemExit(f"{boundary}.toml: duplicate case id {c['id']}")
        seen.add(c["id"])
        if "expect" not in c:
            raise SystemExit(f"{boundary}.toml: case {c['id']} has no expect")
    return cases


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", required=True)
    ap.add_argument("--emulator-json", required=True)
    ap.add_argument("--keysmith")
    ap.add_argument("--c-runner")
    ap.add_argument("--python")
    ap.add_argument("--short", action="store_true", help="only the cases marked short")
    ap.add_argument("--boundary", default="cli,c,python")
    ap.add_argument("--case", action="append", help="only this case id (repeatable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()
    fx = Fixture(json.loads(a.emulator_json), Path(a.work))
    runners = {"cli": lambda: CliRunner(fx, a.keysmith), "c": lambda: CRunner(fx, a.c_runner),
               "python": lambda: PyRunner(fx, a.python)}
    totals = {"pass": 0, "fail": 0, "known": 0}
    failures, knowns = [], []
    for boundary in a.boundary.split(","):
        cases = load_cases(boundary)
        if a.short:
            cases = [c for c in cases if c.get("short")]
        if a.case:
            cases = [c for c in cases if c["id"] in a.case]
        if not cases:
            continue
        runner = runners[boundary]()
        counts = {"pass": 0, "fail": 0, "known": 0}
        started = time.monotonic()
        for c in cases:
            try:
                ok, why = runner.run_case(c)
            except Exception as e:  # a runner bug must not hide the other cases
                ok, why = False, f"campaign error: {type(e).__name__}: {e}"
            defect = c.get("known_defect")
            if ok:
                counts["pass"] += 1
                if defect:
                    print(f"  note {boundary}/{c['id']}: passes although marked known_defect ({defect})")
                elif a.verbose:
                    print(f"  pass {boundary}/{c['id']}")
            elif defect:
                counts["known"] += 1
                knowns.append(f"{boundary}/{c['id']}: {defect} [{why}]")
                print(f"  known defect {boundary}/{c['id']}: {defect}")
            else:
                counts["fail"] += 1
                failures.append(f"{boundary}/{c['id']}: {why}")
                print(f"  FAIL {boundary}/{c['id']}: {why}")
        if isinstance(runner, (CRunner, PyRunner)):
            runner.batch.stop()
        print(f"{boundary}: {len(cases)} inputs: {counts['pass']} passed, {counts['fail']} failed"
              f", {counts['known']} known defects ({time.monotonic() - started:.1f} s)")
        for k in totals:
            totals[k] += counts[k]
    n = sum(totals.values())
    if knowns:
        print("known defects (not failing the run):")
        for k in knowns:
            print("  " + k)
    if failures:
        print("failures:")
        for f in failures:
            print("  " + f)
    print(f"fault campaign: {n} inputs: {totals['pass']} passed, {totals['fail']} failed, "
          f"{totals['known']} known defects")
    return 1 if totals["fail"] else 0


if __name__ == "__main__":
    sys.exit(main())
