"""Every passkey a user holds, keys needing reissue, stale keys and the readiness report
through the keysmith Python module, against the Entra emulator (a subprocess, see
test_lifecycle.py's fixture)."""

from pathlib import Path
from typing import Any

import pytest

import keysmith
from test_lifecycle import KIM, PIN, emulator, make_config  # noqa: F401 (fixture)


def test_user_passkeys_reissue_stale_and_readiness(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    session = keysmith.Session(make_config(emulator, tmp_path))
    device = keysmith.Device("softkey:" + str(tmp_path / "softkey.json"))
    key = session.issue(device, "test-standard", KIM)
    key = session.activate(device, key.key_id, PIN)

    held = session.user_passkeys(KIM)
    assert isinstance(held, keysmith.UserPasskeys)
    assert held.upn == KIM and not held.failed
    assert [(p.kind, p.key_id) for p in held.passkeys] == [("security_key", key.key_id)]
    assert [k.key_id for k in held.keys] == [key.key_id]

    assert session.keys_needing_reissue() == []
    assert session.stale_keys(30) == []
    with pytest.raises(keysmith.UsageError):
        session.stale_keys(0)

    report = session.sms_readiness()
    assert isinstance(report, keysmith.ReadinessReport)
    assert report.group is None and report.checked == 5
    not_ready = {u.upn for u in report.not_ready}
    assert KIM not in not_ready and "leeg@contoso.onmicrosoft.com" in not_ready
    assert report.issue_csv.startswith("user,serial\n")
