"""Reconcile, bulk jobs and paged listing through the keysmith Python module, against the
Entra emulator (a subprocess, see test_lifecycle.py's fixture) with a software key per
bulk row and SQLite in a temporary directory."""

import threading
from pathlib import Path
from typing import Any

import pytest

import keysmith
from test_lifecycle import KIM, emulator, make_config  # noqa: F401 (fixture)

ADELE = "adelev@contoso.onmicrosoft.com"
ALEX = "alexw@contoso.onmicrosoft.com"


def test_bulk_issue_with_softkeys_from_the_callback_then_reconcile_clean(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    job = session.bulk_create("issue", f"user,serial\n{KIM},PY-BULK-1\n{ADELE},PY-BULK-2\n")
    assert isinstance(job, keysmith.BulkJob)
    assert job.kind == "issue" and job.total == 2
    assert session.bulk_create("issue", f"user,serial\n{KIM},PY-BULK-1\n{ADELE},PY-BULK-2\n") \
        == job, "the same text is the same job"

    rows: list[keysmith.BulkRow] = []
    progress: list[keysmith.BulkProgress] = []
    threads = set()

    def device(row: keysmith.BulkRow) -> str:
        rows.append(row)
        threads.add(threading.get_ident())
        return "softkey:" + str(tmp_path / f"row{row.line}.json")

    def on_progress(p: keysmith.BulkProgress) -> None:
        progress.append(p)
        threads.add(threading.get_ident())

    summary = session.bulk_run(job.job_id, device=device, progress=on_progress,
                               template="test-standard")
    assert isinstance(summary, keysmith.BulkSummary)
    assert (summary.done, summary.failed, summary.total) == (2, 0, 2), summary
    assert [(r.line, r.user, r.serial) for r in rows] == \
        [(2, KIM, "PY-BULK-1"), (3, ADELE, "PY-BULK-2")]
    assert [p.status for p in progress] == ["done", "done"]
    assert progress[-1].done == 2 and progress[-1].total == 2
    assert threads == {threading.get_ident()}, "callbacks run on the calling thread"
    assert (tmp_path / "row2.json").exists() and (tmp_path / "row3.json").exists()

    page = session.list_keys_page(limit=1)
    assert len(page.keys) == 1 and page.next_after
    rest = session.list_keys_page(after=page.next_after, limit=100)
    assert rest.next_after is None
    keys = page.keys + rest.keys
    assert sorted(k.serial for k in keys) == ["PY-BULK-1", "PY-BULK-2"]
    assert all(k.state == "issued" for k in keys)

    # Both keys wait for activation: their registrations expire within 2 h.
    expiring: list[keysmith.ExpiringRegistration] = []
    after = None
    while True:
        expiring_page = session.list_expiring_page(2 * 3_600_000, after=after, limit=1)
        expiring += expiring_page.pending
        after = expiring_page.next_after
        if after is None:
            break
        assert isinstance(after, keysmith.ExpiringCursor)
    assert sorted(p.key_id for p in expiring) == sorted(k.key_id for k in keys)
    assert session.list_expiring_page(60_000).pending == ()
    with pytest.raises(keysmith.UsageError):
        session.list_expiring_page(60_000, after={"bogus": 1})  # type: ignore[arg-type]

    report = session.reconcile([KIM, ADELE])
    assert isinstance(report, keysmith.DriftReport)
    assert report.users_checked == 2
    assert report.clean is True and report.findings == (), report
    assert session.reconcile([]).users_checked == 2, "every key holder"

    # A rerun has nothing left to do.
    again = session.bulk_run(job.job_id, device=device)
    assert (again.done, again.skipped, again.items) == (2, 2, ())
    assert len(rows) == 2


def test_device_callback_failures_fail_only_their_row(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    job = session.bulk_create("issue", f"user,serial\n{KIM},PY-X-1\n{ALEX},PY-X-2\n")

    def device(row: keysmith.BulkRow) -> str | None:
        if row.user == KIM:
            raise RuntimeError("no key in the drawer")
        return None

    summary = session.bulk_run(job.job_id, device=device, template="test-standard")
    assert (summary.done, summary.failed) == (0, 2)
    outcomes = [i.outcome for i in summary.items]
    assert any("no key in the drawer" in o for o in outcomes), outcomes
    assert any("must return" in o for o in outcomes), outcomes
    assert session.list_keys_page().keys == ()


def test_bulk_revoke_and_bad_job_input(emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    ids = [session.issue(keysmith.Device("softkey:" + str(tmp_path / f"k{i}.json")),
                         "test-standard", user).key_id
           for i, user in enumerate([KIM, ADELE])]
    job = session.bulk_create("revoke", "key_id\n" + "\n".join(ids) + "\n")
    seen: list[keysmith.BulkProgress] = []
    # keep_items=False: the rows reach progress only, the summary holds none of them.
    summary = session.bulk_run(job.job_id, progress=seen.append, workers=2, rate=50.0,
                               keep_items=False)
    assert (summary.done, summary.failed, summary.items) == (2, 0, ())
    assert len(seen) == 2 and {p.status for p in seen} == {"done"}
    assert {session.key(i).key.state for i in ids} == {keysmith.KeyState.REVOKED}

    with pytest.raises(keysmith.UsageError) as e:
        session.bulk_create("explode", "user\nx\n")
    assert e.value.code == 2
    with pytest.raises(keysmith.UsageError) as e:
        session.bulk_create("issue", "user\nkim\n")
    assert "serial" in str(e.value)
    with pytest.raises(keysmith.UsageError):
        session.bulk_run(job.job_id, workers=0)
    with pytest.raises(keysmith.UsageError):
        session.bulk_run(424242)
    with pytest.raises(keysmith.UsageError):
        session.reconcile([KIM], delete_unknown=True)
    with pytest.raises(keysmith.UsageError):
        session.list_keys_page(limit=0)
