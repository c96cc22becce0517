"""Exceptions, strict results and Ctrl-C: the class hierarchy and how a facade error picks
its class (no emulator needed), a wrong PIN on the software key, and SIGINT while the key
waits for a touch that never comes (against the Entra emulator, see test_lifecycle.py)."""

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

import keysmith
from keysmith.errors import _from_native
from test_lifecycle import KIM, PIN, emulator, make_config  # noqa: F401 (fixture)


def test_exceptions_inherit_the_matching_builtins() -> None:
    expected: list[tuple[type[keysmith.KeysmithError], tuple[type[BaseException], ...]]] = [
        (keysmith.UsageError, (ValueError,)),
        (keysmith.TemplateError, (ValueError,)),
        (keysmith.DeviceError, (OSError,)),
        (keysmith.PinInvalid, (keysmith.DeviceError, OSError)),
        (keysmith.PinBlocked, (keysmith.DeviceError, OSError)),
        (keysmith.DeviceNotFound, (keysmith.DeviceError, FileNotFoundError, OSError)),
        (keysmith.Cancelled, (keysmith.DeviceError, OSError)),
        (keysmith.IdpError, ()),
        (keysmith.RepositoryError, ()),
        (keysmith.TransitionError, ()),
        (keysmith.InternalError, ()),
    ]
    for cls, builtins in expected:
        assert issubclass(cls, keysmith.KeysmithError)
        for b in builtins:
            assert issubclass(cls, b), (cls, b)
    assert not issubclass(keysmith.IdpError, OSError)


def test_the_class_comes_from_the_reason_then_the_kind() -> None:
    e = _from_native("device", "pin_invalid", "wrong PIN", 3, 0x31, 2)
    assert type(e) is keysmith.PinInvalid
    assert (e.kind, e.reason, e.message, e.code, e.ctap_status, e.retries_left) == \
        ("device", "pin_invalid", "wrong PIN", 3, 0x31, 2)
    assert str(e) == "wrong PIN" and isinstance(e, OSError)
    cases = [
        ("device", "pin_blocked", keysmith.PinBlocked),
        ("device", "pin_auth_blocked", keysmith.PinBlocked),
        ("device", "device_not_found", keysmith.DeviceNotFound),
        ("usage", "device_not_found", keysmith.DeviceNotFound),
        ("device", "cancelled", keysmith.Cancelled),
        ("device", "device", keysmith.DeviceError),
        ("device", "key_unplugged", keysmith.DeviceError),
        ("usage", "key_not_found", keysmith.UsageError),
        ("template", "template", keysmith.TemplateError),
        ("transition", "transition", keysmith.TransitionError),
        ("idp", "idp", keysmith.IdpError),
        ("repository", "repository", keysmith.RepositoryError),
        ("internal", "internal", keysmith.InternalError),
        ("something_new", "something_new", keysmith.InternalError),
    ]
    for kind, reason, cls in cases:
        err = _from_native(kind, reason, "m", 9, None, None)
        assert type(err) is cls, (kind, reason, type(err))
        assert err.retries_left is None and err.ctap_status is None
    # Raised by hand, an error takes its class's kind.
    assert keysmith.UsageError("x").kind == "usage" and keysmith.UsageError("x").code == 2
    assert keysmith.PinInvalid("x", retries_left=1).reason == "device"


def test_results_are_built_strictly() -> None:
    native = {"key_id": "k", "aaguid": "00", "serial": "S", "state": "issued",
              "user_id": None, "template": None, "needs_reissue": False, "version": 1,
              "created_ms": 1, "updated_ms": 2, "identity": None, "serial_source": None}
    key = keysmith.Key._from_native(native)
    assert key.state is keysmith.KeyState.ISSUED
    with pytest.raises(AttributeError):
        key.serial = "other"  # type: ignore[misc]
    with pytest.raises(keysmith.InternalError, match=r"unknown fields \['colour'\]"):
        keysmith.Key._from_native({**native, "colour": "red"})
    with pytest.raises(keysmith.InternalError, match=r"missing fields \['version'\]"):
        keysmith.Key._from_native({k: v for k, v in native.items() if k != "version"})
    with pytest.raises(keysmith.InternalError, match="KeyState: unknown value 'lost'"):
        keysmith.Key._from_native({**native, "state": "lost"})


def issued_key(emulator: dict[str, Any], tmp_path: Path) -> tuple[keysmith.Session, str, str]:
    """A session, the state file of a software key and the id of the key issued on it."""
    session = keysmith.Session(make_config(emulator, tmp_path))
    state = str(tmp_path / "softkey.json")
    key = session.issue(keysmith.Device("softkey:" + state), "test-standard", KIM)
    return session, state, key.key_id


def test_a_wrong_pin_raises_pin_invalid_with_the_retries_left(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    session, state, key_id = issued_key(emulator, tmp_path)
    device = keysmith.Device("softkey:" + state)
    session.activate(device, key_id, PIN)
    with pytest.raises(keysmith.PinInvalid) as e:
        session.sign_in(device, key_id, "wrong-pin-1357")
    assert isinstance(e.value, OSError)
    assert isinstance(e.value, keysmith.DeviceError)
    assert e.value.reason == "pin_invalid"
    assert isinstance(e.value.retries_left, int)
    assert e.value.retries_left < 8


def test_ctrl_c_during_a_touch_wait_cancels_and_changes_nothing(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    assert threading.current_thread() is threading.main_thread()
    session, state, key_id = issued_key(emulator, tmp_path)
    # Taken back (revoke, retire, unregister): the key has a record and may be issued again.
    for step in (session.revoke, session.retire, session.unregister):
        step(key_id)
    before = session.key(key_id)
    assert before.key.state is keysmith.KeyState.UNREGISTERED
    touches: list[keysmith.Prompt] = []
    sent: list[float] = []

    def interrupt() -> None:
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    # Ctrl-C while the key waits for its touch: sent 0.3 s after the first touch prompt
    # (a fixed delay from the call's start raced the flow's Graph calls on a slow machine).
    # A second Ctrl-C 2 s later, as a user would press it: CPython loses a KeyboardInterrupt
    # raised inside a finalizer the garbage collector runs on the main thread ("Exception
    # ignored in ..."), which the prompt callbacks' allocations can trigger, and without it
    # one lost interrupt left a CI run waiting forever.
    timers = [threading.Timer(0.3, interrupt), threading.Timer(2.3, interrupt)]

    def on_prompt(p: keysmith.Prompt) -> None:
        touches.append(p)
        if isinstance(p, keysmith.TouchKey) and not timers[0].is_alive() and not sent:
            for t in timers[:2]:
                t.start()

    session.set_prompt(on_prompt)
    # The same key, whose holder never touches it: the issuance waits for a touch forever.
    device = keysmith.Device("softkey:" + state + "?presence=never")
    # Should both be lost, the touch wait is cancelled directly: the test fails (no
    # KeyboardInterrupt) instead of waiting forever.
    timers.append(threading.Timer(8.0, device.cancel))
    started = time.monotonic()
    timers[2].start()
    try:
        with pytest.raises(KeyboardInterrupt) as e:
            session.issue(device, "test-standard", KIM)
    finally:
        for t in timers:
            t.cancel()
    ended = time.monotonic()
    assert sent, "the interrupt was sent"
    assert ended - sent[-1] < 2.0, f"KeyboardInterrupt {ended - sent[-1]:.2f} s after SIGINT"
    assert ended - started < 8.0
    assert any(isinstance(p, keysmith.TouchKey) for p in touches), "it waited for a touch"
    # The cancelled operation's own error is the interrupt's context.
    assert isinstance(e.value.__context__, keysmith.DeviceError), repr(e.value.__context__)
    assert "cancel" in str(e.value.__context__)
    after = session.key(key_id)
    assert after.key == before.key
    assert after.passkeys == before.passkeys and after.pending == before.pending
    # The key is issued once its holder touches it.
    again = session.issue(keysmith.Device("softkey:" + state), "test-standard", KIM)
    assert again.key_id == key_id and again.state is keysmith.KeyState.ISSUED


def test_cancel_from_the_prompt_raises_a_device_error(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    device = keysmith.Device("softkey:" + str(tmp_path / "k.json") + "?presence=never")
    session.set_prompt(lambda p: device.cancel())
    with pytest.raises(keysmith.DeviceError) as e:
        session.issue(device, "test-standard", KIM)
    assert "cancel" in str(e.value) and isinstance(e.value, OSError)
    # Cancelled once the facade names the reason `cancelled` (else a plain DeviceError).
    assert isinstance(e.value, keysmith.Cancelled) == (e.value.reason == "cancelled")
    # Nothing issued: the key is at most recorded as discovered (blank).
    assert session.list_keys(user=KIM) == []
    assert {k.state for k in session.list_keys()} <= {keysmith.KeyState.BLANK}
