"""The fault campaign's Python runner (run by campaign.py in the interpreter that has the
built keysmith module): one JSON case per stdin line, one JSON outcome per stdout line.

A case is Python code run with these names: keysmith, native (keysmith._native), cfg (the
case's session config: a dict, or text), S() (a Session of cfg, opened once), D() (a
Device of the case's software key), softkey (its spec), user (a directory user),
template (the standard template's text), connection (the emulator's connection dict),
tmp (the case's folder), issued() (a key issued to `user` with the standard template:
its key id). `setup` runs first (an exception there is a setup failure); `code` is the
input under test: its exception (class and MRO, kind, reason, message) is the outcome.
"""

import json
import sys
import traceback

import keysmith
from keysmith import _native


def run(case: dict) -> dict:
    state: dict = {}

    def S():
        if "session" not in state:
            state["session"] = keysmith.Session(case["config"])
        return state["session"]

    def D():
        if "device" not in state:
            state["device"] = keysmith.Device(case["softkey"])
        return state["device"]

    def issued(serial: str = "PY1") -> str:
        return S().issue(D(), "test-standard", case["user"], serial=serial).key_id

    ns = {"keysmith": keysmith, "native": _native, "cfg": case["config"], "S": S, "D": D,
          "softkey": case["softkey"], "user": case["user"], "template": case["template"],
          "connection": case["connection"], "tmp": case["dir"], "issued": issued,
          "json": json}
    if case.get("setup"):
        try:
            exec(case["setup"], ns)
        except BaseException as e:  # noqa: BLE001 (reported, not raised)
            return {"id": case["id"], "setup_error": f"{type(e).__name__}: {e}"}
    try:
        result = eval(compile(case["code"], "<case>", "eval"), ns)
    except SyntaxError:
        try:
            exec(case["code"], ns)
            result = None
        except BaseException as e:  # noqa: BLE001
            return outcome(case, e)
    except BaseException as e:  # noqa: BLE001
        return outcome(case, e)
    return {"id": case["id"], "outcome": "ok", "result": repr(result)[:300]}


def outcome(case: dict, e: BaseException) -> dict:
    out = {"id": case["id"], "outcome": "raised", "class": type(e).__name__,
           "mro": [c.__name__ for c in type(e).__mro__], "message": str(e)[:2000]}
    for field in ("kind", "reason", "code", "ctap_status", "retries_left"):
        if hasattr(e, field):
            out[field] = getattr(e, field)
    if not isinstance(e, keysmith.KeysmithError):
        out["traceback"] = traceback.format_exc()[-1500:]
    return out


def main() -> None:
    for line in sys.stdin:
        case = json.loads(line)
        try:
            answer = run(case)
        except BaseException as e:  # noqa: BLE001 (never lose a case's answer)
            answer = {"id": case.get("id"), "setup_error": f"runner: {type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(answer, default=repr) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
