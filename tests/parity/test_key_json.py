"""One key, three bindings: the same JSON object from the command line
(`keysmith show --json`), the C ABI (`ks_key_get`, through ctypes on libkeysmith.so) and
Python (`Session.key()`).

Builds target/debug/{keysmith,libkeysmith.so} (cargo build: nothing to do when they are
current) and needs the `keysmith` Python module (`maturin develop`, as
scripts/test-all.sh does)."""

import ctypes
import dataclasses
import enum
import json
import os
import re
import subprocess
from pathlib import Path

import pytest

import keysmith

REPO = Path(__file__).resolve().parents[2]
DEBUG = REPO / "target" / "debug"
KIM = "kim@contoso.onmicrosoft.com"
PIN = "holder-pin-2468"
TEMPLATE = (REPO / "tests" / "testkit" / "templates" / "standard.toml").read_text()


def built(name, *cargo_args):
    """target/debug/NAME, built (or brought up to date) with `cargo build CARGO_ARGS`."""
    subprocess.run(["cargo", "build", "--quiet", *cargo_args], cwd=REPO, check=True)
    return DEBUG / name


@pytest.fixture(scope="module")
def emulator():
    binary = os.environ.get("KEYSMITH_EMULATOR_BIN") or str(
        built("entra-emulator", "-p", "entra-graph", "--features", "emulator",
              "--bin", "entra-emulator"))
    proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line, "entra-emulator printed nothing"
        yield json.loads(line)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def plain(value):
    """A typed Python result (dataclass, enum) as the JSON value it stands for."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def c_key(config_json, key_id):
    lib = ctypes.CDLL(str(built("libkeysmith.so", "-p", "keysmith-c")))
    session = ctypes.c_void_p()
    assert lib.ks_session_open(config_json.encode(), ctypes.byref(session)) == 0
    out = ctypes.c_void_p()
    try:
        status = lib.ks_key_get(session, key_id.encode(), ctypes.byref(out))
        assert status == 0, status
        return json.loads(ctypes.string_at(out.value).decode())
    finally:
        lib.ks_string_free(out)
        lib.ks_session_free(session)


def cli_key(config_path, key_id):
    binary = built("keysmith", "-p", "keysmith-cli")
    out = subprocess.run([str(binary), "--config", str(config_path), "--json", "show", key_id],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def test_one_key_is_the_same_json_in_every_binding(emulator, tmp_path):
    config = {
        "repository": {"sqlite": str(tmp_path / "keysmith.db")},
        "pin_key": "3c" * 32,
        "station": "parity",
        "allow_software_keys": True,
        "idp": [{
            "name": "contoso-entra",
            "tenant": emulator["tenant_id"],
            "client_id": emulator["client_id"],
            "client_secret": emulator["client_secret"],
            "graph_api_version": "beta",
            "login_base": emulator["base_url"],
            "graph_base": emulator["base_url"],
        }],
        "templates": [TEMPLATE],
    }
    config_json = json.dumps(config)
    config_path = tmp_path / "keysmith.json"
    config_path.write_text(config_json)

    session = keysmith.Session(config_json)
    device = keysmith.Device("softkey:%s" % (tmp_path / "key.json"))
    issued = plain(session.issue(device, "test-standard", KIM))
    key_id = issued["key_id"]
    session.activate(device, key_id, PIN)

    from_python = plain(session.key(key_id))
    from_c = c_key(config_json, key_id)
    from_cli = cli_key(config_path, key_id)

    assert set(from_cli) == {"key", "passkeys", "pending", "audit"}
    assert from_cli == from_c
    assert from_python == from_c
    key = from_cli["key"]
    assert key["state"] == "active"
    # The encodings: AAGUID as 32 hex digits, credential ids base64url without padding.
    assert re.fullmatch(r"[0-9a-f]{32}", key["aaguid"])
    assert len(from_cli["passkeys"]) == 1
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", from_cli["passkeys"][0]["credential_id"])
