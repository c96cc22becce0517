"""The native module returns the C ABI's JSON documents (as dicts): the ones of a real run
against the Entra emulator validate against the same schemas in docs/schemas/, and fail
with a field renamed (the schemas are closed). Needs jsonschema (in the wheel test venv,
.ci/requirements-wheel-test.txt); without it the test is skipped, except under CI=true."""

import json
import os
from pathlib import Path
from typing import Any

import pytest

import keysmith
from keysmith import _native
from test_lifecycle import KIM, PIN, REPO, emulator, make_config  # noqa: F401 (fixture)

SCHEMAS = REPO / "docs" / "schemas"


def validators() -> dict[str, Any]:
    try:
        # Not in the tools venv that runs mypy: no stubs there, by design.
        import jsonschema  # type: ignore[import-untyped, import-not-found, unused-ignore]
        from referencing import (  # type: ignore[import-not-found, unused-ignore]
            Registry,
            Resource,
        )
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip("jsonschema is not installed")
    raw = {p.name.removesuffix(".schema.json"): json.loads(p.read_text())
           for p in SCHEMAS.glob("*.schema.json")}
    registry = Registry().with_resources(
        (s["$id"], Resource.from_contents(s)) for s in raw.values())
    cls = jsonschema.Draft202012Validator
    return {name: cls(s, registry=registry) for name, s in raw.items()}


def renamed(doc: Any) -> Any:
    """`doc` (or its first element) with its first field renamed."""
    if isinstance(doc, list):
        return [renamed(doc[0])] + doc[1:]
    first = next(iter(doc))
    return {(k + "_renamed" if k == first else k): v for k, v in doc.items()}


def test_native_results_are_the_c_abi_documents(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    v = validators()
    session = keysmith.Session(make_config(emulator, tmp_path))
    native = session._native
    device = _native.Device("softkey:" + str(tmp_path / "softkey.json"))
    docs: list[tuple[str, Any]] = []

    key = native.issue(device, "test-standard", KIM, None, None)
    docs.append(("key", key))
    docs.append(("key", native.activate(device, key["key_id"], PIN)))
    docs.append(("sign-in", native.sign_in(device, key["key_id"], PIN)))
    docs.append(("key-record", native.key(key["key_id"])))
    docs.append(("audit-check", native.audit_verify()))
    docs.append(("template-summary", _native.template_check(
        (REPO / "tests" / "testkit" / "templates" / "standard.toml").read_text())))
    docs.append(("self-service-start", native.self_service_begin()))
    docs.append(("reconcile-report", native.reconcile([KIM], False, False)))
    docs.append(("user-passkeys", _native.user_passkeys(native, KIM)))
    docs.append(("key-needs-reissue-list", _native.keys_needing_reissue(native)))
    docs.append(("key-stale-list", _native.stale_keys(native, 30)))
    docs.append(("user-readiness", _native.sms_readiness(native, None, None)))
    docs.append(("bulk-job", native.bulk_create("revoke", f"key_id\n{key['key_id']}\n")))

    for name, doc in docs:
        errors = [e.message for e in v[name].iter_errors(doc)]
        assert not errors, (name, errors, doc)
        if doc:
            assert not v[name].is_valid(renamed(doc)), (name, "still valid renamed")
