"""The package as users meet it: docstrings on every public class and method (native and
typed layers, and the stubs), Session and Device as context managers, and log records
delivered to Python's logging."""

import ast
import enum
import inspect
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import keysmith
import keysmith.errors
import keysmith.results
import keysmith.session
import keysmith.split
from keysmith import _native
from test_lifecycle import KIM, PIN, emulator, make_config  # noqa: F401 (fixture)

MODULES = [keysmith, keysmith.errors, keysmith.results, keysmith.session, keysmith.split, _native]


def public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [n for n in vars(module) if not n.startswith("_")]
    return [n for n in names if not n.startswith("__")]


def members_without_docs(cls: type) -> list[str]:
    missing = []
    for name, value in vars(cls).items():
        if name.startswith("_") and name not in ("__init__", "__new__", "__enter__", "__exit__"):
            continue
        if isinstance(value, (staticmethod, classmethod)):
            value = value.__func__
        if not (callable(value) or isinstance(value, property)
                or type(value).__name__ == "getset_descriptor"):
            continue
        if name == "__init__" and dataclass_like(cls):
            continue  # written by @dataclass
        if name == "__new__" and issubclass(cls, enum.Enum):
            continue  # written by the enum machinery
        if not (getattr(value, "__doc__", None) or "").strip():
            missing.append(f"{cls.__module__}.{cls.__qualname__}.{name}")
    return missing


def dataclass_like(cls: type) -> bool:
    return hasattr(cls, "__dataclass_fields__")


def test_every_public_class_and_function_has_a_docstring() -> None:
    missing: list[str] = []
    seen: set[int] = set()
    for module in MODULES:
        assert (module.__doc__ or "").strip(), f"{module.__name__} has no docstring"
        for name in public_names(module):
            obj = getattr(module, name)
            if id(obj) in seen or not (inspect.isclass(obj) or callable(obj)):
                continue
            seen.add(id(obj))
            if not (obj.__doc__ or "").strip():
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                missing += members_without_docs(obj)
    assert not missing, "no docstring: " + ", ".join(sorted(missing))


def test_every_stub_has_a_docstring() -> None:
    stub = Path(_native.__file__).with_name("_native.pyi")
    assert stub.is_file(), f"{stub} is not installed"
    tree = ast.parse(stub.read_text())
    missing = [
        node.name for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) is None
    ]
    assert not missing, f"stubs without a docstring: {missing}"


def test_session_and_device_are_context_managers(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    state = "softkey:" + str(tmp_path / "key.json")
    with keysmith.Session(make_config(emulator, tmp_path)) as session, \
            keysmith.Device(state) as device:
        assert isinstance(session, keysmith.Session) and isinstance(device, keysmith.Device)
        key = session.issue(device, "test-standard", KIM)
    assert "closed" in repr(session) and "closed" in repr(device)
    for call in (lambda: session.key(key.key_id), session.templates, lambda: session.actor,
                 device.info, lambda: device.serial):
        with pytest.raises(keysmith.UsageError) as e:
            call()
        assert e.value.reason == "closed", e.value.reason
    device.cancel()  # nothing to cancel: no error
    session.close()  # closing again does nothing
    device.close()
    # The key and the repository were let go of: both open again.
    with keysmith.Session(make_config(emulator, tmp_path)) as again:
        assert again.key(key.key_id).key.state is keysmith.KeyState.ISSUED
        again.activate(keysmith.Device(state), key.key_id, PIN)
    # An exception in the block propagates, and the session is closed anyway.
    with pytest.raises(RuntimeError, match="boom"):
        with keysmith.Session(make_config(emulator, tmp_path)) as s:
            raise RuntimeError("boom")
    with pytest.raises(keysmith.UsageError):
        s.templates()


@pytest.fixture
def python_logging() -> Iterator[None]:
    keysmith.enable_logging("debug")
    try:
        yield
    finally:
        keysmith.disable_logging()


def test_log_records_reach_python_logging(
        emulator: dict[str, Any], tmp_path: Path, caplog: pytest.LogCaptureFixture,
        python_logging: None) -> None:
    caplog.set_level(logging.DEBUG, logger="keysmith")
    with keysmith.Session(make_config(emulator, tmp_path)) as session:
        key = session.issue(keysmith.Device("softkey:" + str(tmp_path / "k.json")),
                            "test-standard", KIM)
        session.activate(keysmith.Device("softkey:" + str(tmp_path / "k.json")),
                         key.key_id, PIN)
    records = [r for r in caplog.records if r.name.startswith("keysmith.")]
    assert records, "no keysmith records reached logging"
    names = {r.name for r in records}
    assert any(n.startswith("keysmith.lifecycle.") for n in names), names
    assert {r.levelno for r in records} <= {5, logging.DEBUG, logging.INFO, logging.WARNING,
                                            logging.ERROR}
    assert any(r.levelno == logging.INFO for r in records)
    text = "\n".join(r.getMessage() for r in records)
    assert PIN not in text, "a PIN reached the log"
    # Stopped: nothing more arrives.
    keysmith.disable_logging()
    caplog.clear()
    with keysmith.Session(make_config(emulator, tmp_path)) as session:
        session.inactivate(key.key_id)
    keysmith.flush_logging()
    assert not [r for r in caplog.records if r.name.startswith("keysmith.")]


def test_enable_logging_takes_logging_levels_and_refuses_unknown_ones(
        python_logging: None) -> None:
    keysmith.enable_logging(logging.WARNING)
    keysmith.enable_logging(logging.DEBUG)
    with pytest.raises(keysmith.UsageError):
        keysmith.enable_logging("loud")
