"""Ctrl-C during Session.bulk_run: the run stops between rows (a touch wait on a row's key is
cancelled), KeyboardInterrupt is raised, the rows not run stay to do and the job resumes.
SIGINT is sent to this process from a timer thread, as a terminal's Ctrl-C would be."""

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

import keysmith
from test_lifecycle import emulator, make_config  # noqa: F401 (fixture)

USERS = ["kim@contoso.onmicrosoft.com", "adelev@contoso.onmicrosoft.com",
         "alexw@contoso.onmicrosoft.com"]


def csv_rows(n: int, prefix: str) -> str:
    return "user,serial\n" + "".join(
        f"{USERS[i % len(USERS)]},{prefix}-{i:03}\n" for i in range(n))


@contextmanager
def sigint_after(seconds: float) -> Iterator[list[float]]:
    """Sends SIGINT to this process after `seconds`; yields [when it was sent]."""
    assert threading.current_thread() is threading.main_thread()
    sent: list[float] = []

    def interrupt() -> None:
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(seconds, interrupt)
    timer.start()
    try:
        yield sent
    finally:
        timer.cancel()
        timer.join()


def test_ctrl_c_stops_a_bulk_run_between_rows_and_the_job_resumes(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    rows = 40
    session = keysmith.Session(make_config(emulator, tmp_path))
    text = csv_rows(rows, "PY-INT")
    job = session.bulk_create("issue", text)
    asked: list[int] = []
    progress: list[keysmith.BulkProgress] = []

    def device(row: keysmith.BulkRow) -> str:
        asked.append(row.line)
        # Each holder touches the key after 100 ms: 40 rows take at least 4 s.
        return "softkey:" + str(tmp_path / f"row{row.line}.json") + "?presence=100ms"

    with sigint_after(0.8) as sent, pytest.raises(KeyboardInterrupt) as e:
        session.bulk_run(job.job_id, device=device, progress=progress.append,
                         template="test-standard")
    ended = time.monotonic()
    assert sent, "the interrupt was sent"
    assert ended - sent[0] < 2.0, f"KeyboardInterrupt {ended - sent[0]:.2f} s after SIGINT"
    stopped = e.value.__context__
    assert isinstance(stopped, keysmith.UsageError), repr(stopped)
    assert stopped.reason == "bulk_stopped", stopped.reason
    # It stopped early: rows were run, most were not. (The interrupt may land while the
    # progress callback of the last row run is being called: the store is the truth.)
    # A row whose touch wait the interrupt cancelled has its key recorded (blank) but is
    # not done: count the issued keys.
    keys = session.list_keys(state="issued")
    done = len(keys)
    assert 1 <= done < rows, done
    assert len(asked) < rows and len(asked) <= done + 1, (len(asked), done)
    assert {p.line for p in progress} <= set(asked)
    assert all(p.status == "done" for p in progress), progress
    assert f"({rows - done} left to do)" in str(stopped), (str(stopped), done)
    # The job is unfinished (the same CSV is the same job) and its remaining rows are
    # still to do.
    assert session.bulk_create("issue", text).job_id == job.job_id, "the job is unfinished"
    done_serials = {k.serial for k in keys}

    # Resumed: only the rows not done run.
    asked.clear()
    summary = session.bulk_run(job.job_id, device=device, template="test-standard")
    assert (summary.done, summary.failed) == (rows, 0), summary
    assert summary.skipped == done
    assert len(asked) == rows - done
    assert {f"PY-INT-{line - 2:03}" for line in asked}.isdisjoint(done_serials)
    assert len(session.list_keys()) == rows


def test_ctrl_c_cancels_the_touch_wait_of_a_bulk_row(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    job = session.bulk_create("issue", csv_rows(5, "PY-WAIT"))
    asked: list[int] = []

    def never(row: keysmith.BulkRow) -> str:
        asked.append(row.line)
        # The holder never touches: only a cancel ends the wait.
        return "softkey:" + str(tmp_path / f"row{row.line}.json") + "?presence=never"

    started = time.monotonic()
    with sigint_after(0.5) as sent, pytest.raises(KeyboardInterrupt) as e:
        session.bulk_run(job.job_id, device=never, template="test-standard")
    ended = time.monotonic()
    assert sent and ended - sent[0] < 2.0, f"{ended - sent[0]:.2f} s after SIGINT"
    assert ended - started < 5.0
    assert asked == [2], "the first row waited; no other row started"
    stopped = e.value.__context__
    assert isinstance(stopped, keysmith.UsageError) and stopped.reason == "bulk_stopped"
    assert session.list_keys(user=USERS[0]) == []
    # The cancelled row failed; it and the rows never started run on resume.
    summary = session.bulk_run(
        job.job_id, template="test-standard",
        device=lambda row: "softkey:" + str(tmp_path / f"row{row.line}.json"))
    assert (summary.done, summary.failed) == (5, 0), summary
