"""Every passkey a user holds, keys needing reissue, keys not used for a while and the
SMS/voice retirement readiness report (``Session.user_passkeys``,
``Session.keys_needing_reissue``, ``Session.stale_keys``, ``Session.sms_readiness``).

Built strictly from the native module's dicts, as :mod:`keysmith.results` is.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from keysmith.results import Key, _Result, _strings, _tuple_of

__all__ = [
    "UserPasskey",
    "ConnectionFailure",
    "UserPasskeys",
    "ReissueEntry",
    "StaleEntry",
    "ReadinessUser",
    "UserFailure",
    "ReadinessReport",
]


@dataclasses.dataclass(frozen=True)
class UserPasskey(_Result):
    """One passkey an IdP connection lists for a user."""

    connection: str
    """The IdP connection."""
    method_id: str
    """The IdP's method id."""
    display_name: str | None
    """Its display name."""
    aaguid: str | None
    """The authenticator's AAGUID, as the IdP reports it."""
    model: str | None
    """The model, as the IdP reports it."""
    passkey_type: str | None
    """``deviceBound`` or ``synced`` (Entra v1.0 only)."""
    kind: str
    """``security_key``, ``microsoft_authenticator``, ``windows_hello``,
    ``synced_provider`` or ``unknown``."""
    created: str | None
    """When it was registered (ISO 8601)."""
    last_used: str | None
    """When it last signed in (ISO 8601; Entra beta only)."""
    key_id: str | None
    """The key keysmith issued that holds it (``None``: keysmith did not issue it)."""
    passkey_template: str | None
    """That key's passkey template."""
    key_state: str | None
    """That key's state."""


@dataclasses.dataclass(frozen=True)
class ConnectionFailure(_Result):
    """An IdP connection that could not be asked."""

    connection: str
    """The IdP connection."""
    error: str
    """Why."""


@dataclasses.dataclass(frozen=True)
class UserPasskeys(_Result):
    """Every passkey a user holds, beside the keys keysmith issued them."""

    user: str
    """The user as asked for."""
    user_id: str | None
    """The user's object id."""
    upn: str | None
    """The user's UPN."""
    passkeys: tuple[UserPasskey, ...]
    """Every passkey, connection by connection."""
    keys: tuple[Key, ...]
    """The keys keysmith issued the user (any state)."""
    failed: tuple[ConnectionFailure, ...]
    """Connections that could not be asked."""

    _convert = {
        "passkeys": _tuple_of(UserPasskey),
        "keys": _tuple_of(Key),
        "failed": _tuple_of(ConnectionFailure),
    }


def _split_key(data: Any, extra: tuple[str, ...]) -> tuple[Key, dict[str, Any]]:
    if not isinstance(data, dict):
        return Key._from_native(data), {}
    rest = {k: data[k] for k in extra if k in data}
    return Key._from_native({k: v for k, v in data.items() if k not in extra}), rest


@dataclasses.dataclass(frozen=True)
class ReissueEntry:
    """A key marked as needing reissue, and why."""

    key: Key
    """The key."""
    reason: str | None
    """``user_renamed``, ``missing_at_idp``, ``challenge_expired``, or ``None`` when the
    mark did not say."""

    @classmethod
    def _from_native(cls, data: Any) -> ReissueEntry:
        key, rest = _split_key(data, ("reason",))
        return cls(key=key, reason=rest.get("reason"))


@dataclasses.dataclass(frozen=True)
class StaleEntry:
    """An active key not used for a while."""

    key: Key
    """The key."""
    last_used_ms: int | None
    """The latest sign-in of its passkeys as last read from the IdP (``None``: none
    reported)."""
    made_ms: int
    """When its oldest registered passkey was made."""

    @classmethod
    def _from_native(cls, data: Any) -> StaleEntry:
        key, rest = _split_key(data, ("last_used_ms", "made_ms"))
        return cls(key=key, last_used_ms=rest.get("last_used_ms"), made_ms=rest.get("made_ms", 0))


@dataclasses.dataclass(frozen=True)
class ReadinessUser(_Result):
    """One user of the readiness report."""

    id: str
    """The IdP's object id."""
    upn: str | None
    """User principal name."""
    display_name: str | None
    """Display name."""
    methods: tuple[str, ...]
    """The user's sign-in method types (``password``, ``phone``, ``fido2``, ...)."""

    _convert = {"methods": _strings}


@dataclasses.dataclass(frozen=True)
class UserFailure(_Result):
    """A user whose methods could not be read."""

    user_id: str
    """The user's object id."""
    error: str
    """Why."""


@dataclasses.dataclass(frozen=True)
class ReadinessReport(_Result):
    """Who in a group (or the directory) has no phishing-resistant method."""

    connection: str
    """The IdP connection asked."""
    group: str | None
    """The group asked for (``None``: the whole directory)."""
    checked: int
    """Users checked (guests not included)."""
    not_ready: tuple[ReadinessUser, ...]
    """Users with no FIDO2 passkey, Windows Hello for Business, platform credential or
    certificate-based method."""
    guests: tuple[ReadinessUser, ...]
    """Guests and B2B users, refused up front."""
    guest_reason: str
    """Why guests are refused (the IdP's own limitation)."""
    failed: tuple[UserFailure, ...]
    """Users whose methods could not be read."""
    issue_csv: str
    """``not_ready`` as bulk issue CSV (``user,serial``; fill in the serials)."""

    _convert = {
        "not_ready": _tuple_of(ReadinessUser),
        "guests": _tuple_of(ReadinessUser),
        "failed": _tuple_of(UserFailure),
    }
