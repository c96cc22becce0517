"""The keysmith Python module end to end: the Entra emulator as a subprocess (its first
stdout line is the connection JSON), a persistent software key and SQLite in a temporary
directory. The same flow as the C test: open session -> open device -> issue ->
activate -> sign_in -> revoke, prompts counted, error paths."""

import dataclasses
import json
import os
import subprocess
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import keysmith

REPO = Path(__file__).resolve().parents[3]
KIM = "kim@contoso.onmicrosoft.com"
PIN = "holder-pin-2468"

TEMPLATE = (REPO / "tests" / "testkit" / "templates" / "standard.toml").read_text()


@pytest.fixture(scope="module")
def emulator() -> Iterator[dict[str, Any]]:
    """Starts entra-emulator on a free loopback port; yields its connection details."""
    binary = os.environ.get("KEYSMITH_EMULATOR_BIN")
    if binary and os.path.exists(binary):
        cmd = [binary]
    else:
        cmd = ["cargo", "run", "--quiet", "-p", "entra-graph", "--features", "emulator",
               "--bin", "entra-emulator", "--"]
    proc = subprocess.Popen(cmd + ["--listen", "127.0.0.1:0"], cwd=REPO,
                            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, "entra-emulator printed nothing (exit code %r)" % proc.poll()
        emu: dict[str, Any] = json.loads(line)
        yield emu
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def make_config(emu: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    return {
        "repository": {"sqlite": str(tmp_path / "keysmith.db")},
        "pin_key": "3c" * 32,
        "station": "py-test",
        "allow_software_keys": True,
        "idp": [{
            "name": "contoso-entra",
            "tenant": emu["tenant_id"],
            "client_id": emu["client_id"],
            "client_secret": emu["client_secret"],
            "graph_api_version": "beta",
            "login_base": emu["base_url"],
            "graph_base": emu["base_url"],
        }],
        "templates": [TEMPLATE],
    }


def test_module_surface() -> None:
    assert keysmith.version() == keysmith.__version__
    for name in ["UsageError", "DeviceError", "IdpError", "RepositoryError",
                 "TemplateError", "TransitionError", "InternalError"]:
        assert issubclass(getattr(keysmith, name), keysmith.KeysmithError)
    assert issubclass(keysmith.KeysmithError, Exception)
    assert keysmith._native.__name__ == "keysmith._native"
    devices = keysmith.list_devices()
    assert isinstance(devices, keysmith.DeviceList)
    assert {f.name for f in dataclasses.fields(devices)} == {"devices", "unavailable"}


def test_full_lifecycle(emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    assert session.templates() == ["test-standard"]
    prompts: list[keysmith.Prompt] = []
    threads = set()

    def on_prompt(p: keysmith.Prompt) -> None:
        prompts.append(p)
        threads.add(threading.get_ident())

    session.set_prompt(on_prompt)
    device = keysmith.Device("softkey:" + str(tmp_path / "softkey.json"))
    info = device.info()
    assert isinstance(info, keysmith.DeviceInfo)
    assert any(v.startswith("FIDO_2") for v in info.versions)
    assert device.serial

    key = session.issue(device, "test-standard", KIM)
    assert isinstance(key, keysmith.Key)
    assert key.state == "issued" and key.state is keysmith.KeyState.ISSUED
    assert key.serial == device.serial
    touches_after_issue = sum(1 for p in prompts if p.kind == "touch_key")
    assert touches_after_issue >= 1
    assert keysmith.TouchKey(step="makeCredential") in prompts

    key = session.activate(device, key.key_id, PIN)
    assert key.state == keysmith.KeyState.ACTIVE
    details = session.key(key.key_id)
    assert details.key == key
    assert details.passkeys[0].idp_method_id
    assert details.pending == ()

    signed = session.sign_in(device, key.key_id, PIN)
    assert len(signed) == 1
    assert isinstance(signed[0], keysmith.SignInResult)
    assert signed[0].method_id == details.passkeys[0].idp_method_id
    assert sum(1 for p in prompts if isinstance(p, keysmith.TouchKey)) > touches_after_issue

    listed = session.list_keys(user=KIM)
    assert [k.key_id for k in listed] == [key.key_id]
    assert session.list_keys(state=keysmith.KeyState.REVOKED) == []

    key = session.revoke(key.key_id)
    assert key.state == "revoked"
    audit = session.audit(key.key_id)
    assert all(isinstance(a, keysmith.AuditRecord) for a in audit)
    actions = [a.action for a in audit]
    assert "issue" in actions and "activate" in actions and "revoke" in actions
    check = session.audit_verify()
    assert check["ok"] is True and check["first_bad_id"] is None
    assert check["records"] >= len(audit)
    # The IdP no longer holds the passkey: signing in finds nothing to verify.
    assert session.key(key.key_id).passkeys[0].state is keysmith.PasskeyState.REVOKED

    # Error paths: typed exceptions with the C ABI's codes.
    with pytest.raises(keysmith.UsageError) as e:
        session.revoke("no-such-key")
    assert e.value.code == 2 and e.value.kind == "usage"
    assert "no-such-key" in str(e.value)
    assert isinstance(e.value, ValueError)
    with pytest.raises(keysmith.TransitionError) as t:
        session.activate(device, key.key_id, PIN)
    assert t.value.code == 7
    with pytest.raises(keysmith.KeysmithError):
        session.list_keys(state="lost")


def test_operations_run_from_another_thread_with_prompts_there(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    """A session is usable from a worker thread (a config given as JSON text); the
    prompt callback runs on the thread running the operation."""
    session = keysmith.Session(json.dumps(make_config(emulator, tmp_path)))
    callers: list[int] = []
    session.set_prompt(lambda p: callers.append(threading.get_ident()))
    device = keysmith.Device("softkey:" + str(tmp_path / "softkey.json"))
    results: dict[str, Any] = {}

    def work() -> None:
        results["thread"] = threading.get_ident()
        results["key"] = session.issue(device, "test-standard", KIM)

    t = threading.Thread(target=work)
    t.start()
    t.join(timeout=120)
    assert not t.is_alive()
    assert results["key"].state == "issued"
    assert callers and set(callers) == {results["thread"]}
    # Without a callback, an issuance (which waits for a touch) reports nothing.
    session.set_prompt(None)
    before = len(callers)
    second = keysmith.Device("softkey:" + str(tmp_path / "second.json"))
    key = session.issue(second, "test-standard", KIM)
    assert key.state == "issued"
    assert len(callers) == before


SELF_TEMPLATE = """
[passkey.entra]
idp = {{ connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }}
display_name = "{{displayName}} {{serial}}"
rp_id = "login.microsoft.com"

[credential]
name = "py-self"
passkey_templates = ["entra"]
user_assignment = {{ directory = "contoso-entra" }}

[credential.self_service]
pin_set_allowed = true
self_issuance_allowed = true
oidc = {{ issuer = "{issuer}", audience = "{audience}", jwks_url = "{jwks}" }}
"""


def holder_id_token(emu: dict[str, Any], upn: str, nonce: str | None) -> str:
    """An ID token from the emulated identity platform (password grant, demo password),
    carrying ``nonce`` (the emulator copies the form's nonce as the authorize endpoint
    would)."""
    fields = {
        "grant_type": "password",
        "client_id": emu["client_id"],
        "username": upn,
        "password": "keysmith-demo-password",
        "scope": "openid profile",
    }
    if nonce is not None:
        fields["nonce"] = nonce
    form = urllib.parse.urlencode(fields).encode()
    with urllib.request.urlopen(emu["token_url"], data=form, timeout=30) as resp:
        token: str = json.load(resp)["id_token"]
        return token


def test_self_service_issuance_with_an_id_token(emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    summary = session.add_template(SELF_TEMPLATE.format(
        issuer=emulator["oidc_issuer"], audience=emulator["client_id"],
        jwks=emulator["jwks_url"]))
    assert summary.name == "py-self"
    device = keysmith.Device("softkey:" + str(tmp_path / "self.json"))
    start = session.self_service_begin()
    assert start.nonce not in repr(start)
    token = holder_id_token(emulator, KIM, start.nonce)

    with pytest.raises(keysmith.UsageError) as e:
        session.self_issue(device, token[:-8] + "AAAAAAAA", start.nonce, "py-self", PIN)
    assert "holder authentication failed" in str(e.value)
    assert e.value.reason == "holder_auth_failed"
    assert token not in str(e.value)

    # A token from a sign-in without the nonce is refused with its own reason.
    with pytest.raises(keysmith.UsageError) as e:
        session.self_issue(device, holder_id_token(emulator, KIM, None), start.nonce,
                           "py-self", PIN)
    assert e.value.reason == "nonce_missing"

    key = session.self_issue(device, token, start.nonce, "py-self", PIN)
    assert key.state == "active"
    # The same token again is a replay.
    other = keysmith.Device("softkey:" + str(tmp_path / "other.json"))
    with pytest.raises(keysmith.UsageError) as e:
        session.self_issue(other, token, start.nonce, "py-self", PIN)
    assert e.value.reason == "token_replayed"
    assert key.user_id
    assert len(session.sign_in(device, key.key_id, PIN)) == 1
    actors = {a.actor for a in session.audit(key.key_id)}
    assert any(a.startswith("self:") for a in actors)


def test_bad_input_raises_typed_errors(tmp_path: Path) -> None:
    with pytest.raises(keysmith.UsageError) as e:
        keysmith.Session({"repository": {"sqlite": str(tmp_path / "x.db")}, "pin_key": "00"})
    assert "pin_key" in str(e.value)
    with pytest.raises(keysmith.UsageError):
        keysmith.Device("bluetooth:1")
    with pytest.raises(keysmith.UsageError):
        keysmith.Device("softkey:" + str(tmp_path / "k.json") + "?presence=soon")
    with pytest.raises(keysmith.TemplateError) as t:
        keysmith.template_check("[credential]\nname = 3\n")
    assert isinstance(t.value, ValueError)
    summary = keysmith.template_check(TEMPLATE)
    assert summary == keysmith.TemplateSummary(
        name="test-standard", passkey_templates=("entra",), connections=("contoso-entra",))
    with pytest.raises(keysmith.UsageError):
        keysmith.configure_logging({"level": "loud"})
