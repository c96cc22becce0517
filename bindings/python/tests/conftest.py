"""Which keysmith the tests run against.

CI (scripts/test-all.sh) sets ``KEYSMITH_EXPECT_INSTALLED`` to the fresh venv it installed
the built wheel into; the run fails at once if ``import keysmith`` finds anything else
(the source tree, a ``maturin develop`` build).
"""

import os
import pathlib

import keysmith


def pytest_configure() -> None:
    expected = os.environ.get("KEYSMITH_EXPECT_INSTALLED")
    if expected:
        where = pathlib.Path(keysmith.__file__).resolve()
        prefix = pathlib.Path(expected).resolve()
        assert prefix in where.parents, f"keysmith imported from {where}, not from {prefix}"


def pytest_sessionstart(session: object) -> None:
    """Ctrl-C is Python's KeyboardInterrupt here even when the run was started in the
    background: a non-interactive shell starts background jobs with SIGINT ignored, Python
    then leaves it ignored, and the tests that send SIGINT would wait forever."""
    import signal

    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
