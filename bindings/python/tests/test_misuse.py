"""Misuse refused at the Python boundary (issue 14 items 4 and 6): a callback that is not
callable, one Device used by two threads at once, serials that cannot be part of a key
id, an empty station, a bulk rate that would wait an hour per call. Each refusal is a
typed exception naming what was wrong."""

import threading
from pathlib import Path
from typing import Any

import pytest

import keysmith
from keysmith import _native
from test_lifecycle import KIM, PIN, emulator, make_config  # noqa: F401 (fixture)


@pytest.mark.parametrize("bad", [5, "print", b"x", object()])
def test_set_prompt_refuses_what_is_not_callable(
        emulator: dict[str, Any], tmp_path: Path, bad: object) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    with pytest.raises(TypeError, match="set_prompt: callback must be callable or None"):
        session.set_prompt(bad)  # type: ignore[arg-type]
    # The native layer refuses it too (it used to keep it and fail at the first prompt).
    native = _native.Session(make_config(emulator, tmp_path))
    with pytest.raises(TypeError, match="set_prompt: callback must be callable or None, not int"):
        native.set_prompt(5)  # type: ignore[arg-type]
    # None and callables are fine.
    session.set_prompt(None)
    session.set_prompt(print)


def test_bulk_run_refuses_callbacks_that_are_not_callable(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    job = session.bulk_create("issue", "user,serial\nkim,SN1\n")
    with pytest.raises(TypeError, match="bulk_run: device must be callable"):
        session.bulk_run(job.job_id, device=5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="bulk_run: progress must be callable"):
        session.bulk_run(job.job_id, progress="x")  # type: ignore[arg-type]


def test_two_threads_on_one_device_the_second_is_refused_and_the_first_key_survives(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    """Before: both issuances "succeeded" with different serials and the second reset
    wiped the first key ("changePIN failed: wrong PIN" at its activation)."""
    session = keysmith.Session(make_config(emulator, tmp_path))
    device = keysmith.Device("softkey:" + str(tmp_path / "shared.json"))
    started, go = threading.Event(), threading.Event()

    def on_prompt(p: keysmith.Prompt) -> None:
        if isinstance(p, keysmith.TouchKey) and not started.is_set():
            started.set()
            go.wait(timeout=60)

    session.set_prompt(on_prompt)
    results: dict[str, Any] = {}

    def issue(serial: str) -> None:
        try:
            results[serial] = session.issue(device, "test-standard", KIM, serial=serial)
        except keysmith.KeysmithError as e:
            results[serial] = e

    first = threading.Thread(target=issue, args=("TH0",))
    first.start()
    assert started.wait(timeout=60), "thread A never reached its touch prompt"
    second = threading.Thread(target=issue, args=("TH1",))
    second.start()
    # Refused at once: bounded, so a second call that waits shows as a failure.
    second.join(timeout=10)
    answered = not second.is_alive()
    go.set()
    second.join(timeout=120)
    first.join(timeout=120)
    assert answered, "the second issuance waited for the first instead of being refused"
    e = results["TH1"]
    assert isinstance(e, keysmith.DeviceError), e
    assert (e.kind, e.reason) == ("device", "device_busy"), e
    key = results["TH0"]
    assert isinstance(key, keysmith.Key), key
    assert key.key_id.endswith("-TH0")
    assert [k.key_id for k in session.list_keys()] == [key.key_id]
    session.set_prompt(None)
    assert session.activate(device, key.key_id, PIN).state == "active"


@pytest.mark.parametrize("serial", ["NUL\0X", "two\nlines", "tab\there", " padded"])
def test_serials_that_cannot_be_part_of_a_key_id_are_refused(
        emulator: dict[str, Any], tmp_path: Path, serial: str) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    device = keysmith.Device("softkey:" + str(tmp_path / "serial.json"))
    with pytest.raises(keysmith.UsageError) as e:
        session.issue(device, "test-standard", KIM, serial=serial)
    assert e.value.reason == "serial_invalid"
    assert str(e.value).startswith("serial ")
    assert session.list_keys() == []


@pytest.mark.parametrize("station", ["", "   ", "a\nb"])
def test_an_empty_station_is_refused_at_open(
        emulator: dict[str, Any], tmp_path: Path, station: str) -> None:
    config = make_config(emulator, tmp_path)
    config["station"] = station
    with pytest.raises(keysmith.UsageError) as e:
        keysmith.Session(config)
    assert e.value.reason == "station_invalid"
    assert "station" in str(e.value)


@pytest.mark.parametrize("rate", [1e-300, 0.05, 0.0, float("nan"), float("inf")])
def test_a_bulk_rate_below_the_minimum_is_refused(
        emulator: dict[str, Any], tmp_path: Path, rate: float) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    job = session.bulk_create("revoke", "key_id\nno-such-key\n")
    with pytest.raises(keysmith.UsageError) as e:
        session.bulk_run(job.job_id, rate=rate)
    assert e.value.reason == "rate_invalid"
    assert str(e.value).startswith("rate: ")
