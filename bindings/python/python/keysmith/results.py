"""What keysmith operations return: frozen dataclasses and string enums.

They are built from the native module's JSON-shaped dicts strictly: a dict with a field
the class does not know, or without one it needs, raises :class:`InternalError` naming
the fields (the package and its native module do not match), and so does a state this
version does not know. Nothing is dropped silently. The one deliberate exception are
prompts of a kind this version does not know, which arrive as :class:`OtherPrompt`.

Lists inside results are tuples (the results are immutable); timestamps are Unix
milliseconds (``int``); ids and hashes are the strings the repository records.
:func:`dataclasses.asdict` gives the JSON object back (enums are ``str``).
"""

from __future__ import annotations

import dataclasses
import enum
import types
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, TypeVar

from keysmith.errors import InternalError

__all__ = [
    "KeyState",
    "PasskeyState",
    "Key",
    "Passkey",
    "PendingRegistration",
    "AuditRecord",
    "KeyDetails",
    "SelfServiceStart",
    "SignInResult",
    "ReplayResult",
    "User",
    "TemplateSummary",
    "DeviceEntry",
    "DeviceList",
    "DeviceInfo",
    "DriftFinding",
    "DriftReport",
    "BulkJob",
    "BulkRow",
    "BulkProgress",
    "BulkItemResult",
    "BulkSummary",
    "KeyPage",
    "ExpiringRegistration",
    "ExpiringCursor",
    "ExpiringPage",
    "TouchKey",
    "FingerprintSample",
    "EnrollFingerprint",
    "OtherPrompt",
    "Prompt",
]

R = TypeVar("R", bound="_Result")
E = TypeVar("E", bound=enum.Enum)


class KeyState(enum.StrEnum):
    """A key's lifecycle state."""

    BLANK = "blank"
    ISSUED = "issued"
    ACTIVE = "active"
    INACTIVE = "inactive"
    REVOKED = "revoked"
    RETIRED = "retired"
    UNREGISTERED = "unregistered"


class PasskeyState(enum.StrEnum):
    """A passkey's lifecycle state (it follows its key's)."""

    BLANK = "blank"
    ISSUED = "issued"
    ACTIVE = "active"
    INACTIVE = "inactive"
    REVOKED = "revoked"
    RETIRED = "retired"
    UNREGISTERED = "unregistered"


def _mismatch(what: str, detail: str) -> InternalError:
    return InternalError(
        f"keysmith.{what}: {detail} (the keysmith package and its native module do not match)"
    )


class _Result:
    """Strict construction from a native dict (see the module's docs)."""

    # Converters for fields that are not plain JSON values, by field name.
    _convert: ClassVar[Mapping[str, Callable[[Any], Any]]] = {}

    @classmethod
    def _from_native(cls: type[R], data: Any) -> R:
        name = cls.__name__
        if not isinstance(data, dict):
            raise _mismatch(name, f"expected a dict, got {type(data).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(data.keys() - fields)
        missing = sorted(fields - data.keys())
        if unknown or missing:
            raise _mismatch(name, f"unknown fields {unknown}, missing fields {missing}")
        convert = cls._convert
        kwargs = {k: convert[k](v) if k in convert else v for k, v in data.items()}
        factory: Callable[..., R] = cls
        return factory(**kwargs)


def _state(kind: type[E]) -> Callable[[Any], E]:
    def convert(value: Any) -> E:
        try:
            return kind(value)
        except ValueError:
            raise _mismatch(kind.__name__, f"unknown value {value!r}") from None

    return convert


def _tuple_of(cls: type[R]) -> Callable[[Any], tuple[R, ...]]:
    def convert(value: Any) -> tuple[R, ...]:
        if not isinstance(value, list):
            raise _mismatch(cls.__name__, f"expected a list, got {type(value).__name__}")
        return tuple(cls._from_native(v) for v in value)

    return convert


def _optional(cls: type[R]) -> Callable[[Any], R | None]:
    return lambda value: None if value is None else cls._from_native(value)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(value)


@dataclasses.dataclass(frozen=True)
class Key(_Result):
    """A managed key as the repository records it."""

    key_id: str
    """The key id (from AAGUID and serial)."""
    aaguid: str
    """The model's AAGUID (hex)."""
    serial: str
    """The serial number."""
    state: KeyState
    """The lifecycle state."""
    user_id: str | None
    """The user it is issued to (the IdP's object id), if issued."""
    template: str | None
    """The credential template it was issued with."""
    needs_reissue: bool
    """The key must be reissued to be used again."""
    version: int
    """The record's version (bumped by every change)."""
    created_ms: int
    """Created, Unix milliseconds."""
    updated_ms: int
    """Last changed, Unix milliseconds."""
    identity: str | None
    """What the key proved about itself at its latest issuance (hex): its CTAP 2.2
    device identifier or its enterprise attestation certificate's serial."""
    serial_source: str | None
    """Where the serial or identity comes from: ``enc_identifier``,
    ``attestation_certificate``, ``usb_serial_string`` or ``claimed``."""

    _convert = {"state": _state(KeyState)}


@dataclasses.dataclass(frozen=True)
class Passkey(_Result):
    """A passkey recorded on a key."""

    passkey_template: str
    """The passkey template (one per IdP)."""
    credential_id: str
    """The credential id."""
    idp_method_id: str | None
    """The IdP's method id, once registered."""
    state: PasskeyState
    """Its lifecycle state."""
    created_ms: int
    """Created, Unix milliseconds."""

    _convert = {"state": _state(PasskeyState)}


@dataclasses.dataclass(frozen=True)
class PendingRegistration(_Result):
    """A registration made on the key and waiting for activation."""

    passkey_template: str
    """The passkey template."""
    user_id: str
    """The user at that IdP."""
    challenge_expires_ms: int
    """When the IdP's challenge expires, Unix milliseconds."""
    created_ms: int
    """Created, Unix milliseconds."""


@dataclasses.dataclass(frozen=True)
class AuditRecord(_Result):
    """One audit log entry."""

    id: int
    """The entry's id (increasing)."""
    actor: str
    """Who acted."""
    time_ms: int
    """When, Unix milliseconds."""
    action: str
    """What (``issue``, ``activate``, ...)."""
    key_id: str | None
    """The key."""
    user_id: str | None
    """The user."""
    template: str | None
    """The credential template."""
    outcome: str
    """``ok``, ``failed``, ``refused``, ..."""
    idp_request_id: str | None
    """The IdP's request id, if a call was made."""
    detail: str | None
    """Details (an error message)."""


@dataclasses.dataclass(frozen=True)
class KeyDetails(_Result):
    """Everything recorded about one key."""

    key: Key
    """The key."""
    passkeys: tuple[Passkey, ...]
    """Its passkeys."""
    pending: tuple[PendingRegistration, ...]
    """Registrations waiting for activation."""
    audit: tuple[AuditRecord, ...]
    """Its audit log, oldest first."""

    _convert = {
        "key": Key._from_native,
        "passkeys": _tuple_of(Passkey),
        "pending": _tuple_of(PendingRegistration),
        "audit": _tuple_of(AuditRecord),
    }


@dataclasses.dataclass(frozen=True)
class SignInResult(_Result):
    """One verified sign-in with a passkey of the key."""

    passkey_template: str
    """The passkey template of the passkey used."""
    method_id: str
    """The IdP's method id."""
    credential_id: str
    """The credential id."""
    sign_count: int
    """The signature counter the key reported."""


@dataclasses.dataclass(frozen=True)
class SelfServiceStart(_Result):
    """A started self-service sign-in: the nonce for the OpenID Connect authorization
    request, to pass again with the ID token to ``self_issue`` / ``self_set_pin``."""

    nonce: str = dataclasses.field(repr=False)
    """The nonce (good once; not shown in ``repr``)."""
    expires_at_ms: int
    """When it stops being accepted (Unix milliseconds)."""


@dataclasses.dataclass(frozen=True)
class ReplayResult(_Result):
    """What a journal replay did with one entry."""

    id: int
    """The journal entry id."""
    key_id: str
    """The key."""
    operation: str
    """The operation (``register``, ``delete``, ``state``)."""
    outcome: str
    """What happened (``done``, ``found at IdP``, ``failed: ...``, ``busy``)."""


@dataclasses.dataclass(frozen=True)
class User(_Result):
    """A directory user."""

    id: str
    """The IdP's object id."""
    user_principal_name: str | None
    """User principal name."""
    display_name: str | None
    """Display name."""
    mail: str | None
    """Mail address."""


@dataclasses.dataclass(frozen=True)
class TemplateSummary(_Result):
    """What a credential template set contains."""

    name: str
    """The credential template's name (what ``Session.issue`` takes)."""
    passkey_templates: tuple[str, ...]
    """Its passkey templates, in order."""
    connections: tuple[str, ...]
    """The IdP connections they use."""

    _convert = {"passkey_templates": _strings, "connections": _strings}


@dataclasses.dataclass(frozen=True)
class DeviceEntry(_Result):
    """A security key or reader found by ``list_devices``."""

    device: str
    """What ``Device`` opens: ``usb:PATH`` or ``nfc:READER``."""
    transport: str
    """``usb`` or ``nfc``."""
    vendor_id: int | None
    """USB vendor id."""
    product_id: int | None
    """USB product id."""
    manufacturer: str | None
    """Manufacturer string."""
    product: str | None
    """Product string."""
    serial: str | None
    """Serial number, if the key reports one."""
    card_present: bool | None
    """NFC: a card is on the reader."""
    fido_applet: bool | None
    """NFC: the card has a FIDO applet."""


@dataclasses.dataclass(frozen=True)
class DeviceList(_Result):
    """The keys and readers found, and the subsystems that could not be listed."""

    devices: tuple[DeviceEntry, ...]
    """Keys and readers found."""
    unavailable: tuple[str, ...]
    """Subsystems that could not be listed (``USB HID: ...``, ``PC/SC: ...``)."""

    _convert = {"devices": _tuple_of(DeviceEntry), "unavailable": _strings}


@dataclasses.dataclass(frozen=True)
class DeviceInfo(_Result):
    """What a key says about itself (authenticatorGetInfo)."""

    device: str
    """The spec it was opened with."""
    description: str
    """The transport's description."""
    serial: str | None
    """Its serial number, if known."""
    aaguid: str
    """AAGUID (hex)."""
    versions: tuple[str, ...]
    """CTAP versions."""
    extensions: tuple[str, ...]
    """Extensions."""
    options: Mapping[str, bool]
    """Options (``clientPin``, ``uv``, ...), read-only."""
    min_pin_length: int | None
    """Minimum PIN length."""
    firmware_version: int | None
    """Firmware version."""
    remaining_discoverable_credentials: int | None
    """Discoverable credential slots left."""

    _convert = {
        "versions": _strings,
        "extensions": _strings,
        "options": lambda v: types.MappingProxyType(dict(v)),
    }


@dataclasses.dataclass(frozen=True)
class DriftFinding(_Result):
    """One finding of a reconciliation."""

    user: str
    """The user as asked for."""
    user_id: str | None
    """The user's IdP object id, when resolved."""
    key_id: str | None
    """The key concerned, if the repository knows one."""
    passkey_template: str | None
    """The passkey template, if known."""
    idp_connection: str
    """The IdP connection."""
    method_id: str | None
    """The IdP's method id, if any."""
    credential_id: str | None
    """The credential id, if known."""
    kind: str
    """What is wrong: ``missing_at_idp``, ``still_at_idp``, ``unknown``,
    ``expired_pending``, ``check_failed``, ``would_fail_at_sign_in``, ``user_renamed`` or
    ``not_listed_yet``."""
    fixed: bool
    """The drift was repaired."""
    error: str | None
    """Why the repair (or the check) failed, if it did."""
    blocked_by: str | None
    """For ``would_fail_at_sign_in``: the passkey profile(s) that block the passkey at
    sign-in, and why (``"<profiles>: <reason>"``)."""


@dataclasses.dataclass(frozen=True)
class DriftReport(_Result):
    """What a reconciliation found (and fixed)."""

    users_checked: int
    """How many users were checked."""
    clean: bool
    """Nothing was found."""
    fixed: int
    """Findings that were fixed."""
    errors: int
    """Findings whose check or fix failed (``error`` set)."""
    findings: tuple[DriftFinding, ...]
    """One entry per finding, in user order."""

    _convert = {"findings": _tuple_of(DriftFinding)}


@dataclasses.dataclass(frozen=True)
class BulkJob(_Result):
    """A recorded bulk job."""

    job_id: int
    """The job id (give it to ``Session.bulk_run``)."""
    kind: str
    """``issue``, ``revoke`` or ``reconcile``."""
    source_hash: str
    """Hex SHA-256 of the CSV text (the same text for the same kind is the same job
    while that job is unfinished)."""
    actor: str
    """Who created the job."""
    total: int
    """Number of rows."""
    created_ms: int
    """When the job was recorded, Unix milliseconds."""
    finished_ms: int | None
    """When every row of it had run, Unix milliseconds (``None``: unfinished)."""


@dataclasses.dataclass(frozen=True)
class BulkRow(_Result):
    """The row an issue job needs a security key for (given to the device callback)."""

    job_id: int
    """The job."""
    line: int
    """The CSV line."""
    user: str
    """The user the key is for."""
    serial: str
    """The serial the row names."""


@dataclasses.dataclass(frozen=True)
class BulkProgress(_Result):
    """Progress after each bulk row (given to the progress callback)."""

    job_id: int
    """The job."""
    done: int
    """Rows done so far (including those done before this run)."""
    failed: int
    """Rows failed so far."""
    total: int
    """All rows."""
    line: int
    """The CSV line just finished."""
    status: str
    """Its status: ``done`` or ``failed``."""
    outcome: str
    """What happened to it."""


@dataclasses.dataclass(frozen=True)
class BulkItemResult(_Result):
    """One row run (or settled) by a ``Session.bulk_run`` call."""

    line: int
    """The CSV line."""
    status: str
    """``done`` or ``failed``."""
    outcome: str
    """What happened."""


@dataclasses.dataclass(frozen=True)
class BulkSummary(_Result):
    """What a ``Session.bulk_run`` call did."""

    job_id: int
    """The job."""
    kind: str
    """``issue``, ``revoke`` or ``reconcile``."""
    total: int
    """All rows."""
    done: int
    """Rows done (in this or an earlier run)."""
    failed: int
    """Rows failed."""
    skipped: int
    """Rows skipped because an earlier run finished them."""
    settled: int
    """Rows a crash had left running that were found finished."""
    run_elsewhere: int
    """Rows another runner of the same job held and finished while this call waited."""
    items: tuple[BulkItemResult, ...]
    """The rows run (or settled) by this call, by line."""

    _convert = {"items": _tuple_of(BulkItemResult)}


@dataclasses.dataclass(frozen=True)
class KeyPage(_Result):
    """One page of keys (see ``Session.list_keys_page``)."""

    keys: tuple[Key, ...]
    """The keys, sorted by id."""
    next_after: str | None
    """The ``after`` for the next page; ``None`` when this page is the last."""

    _convert = {"keys": _tuple_of(Key)}


@dataclasses.dataclass(frozen=True)
class ExpiringRegistration(_Result):
    """A pending registration in the expiring listing."""

    key_id: str
    """The key it was made on."""
    passkey_template: str
    """The passkey template."""
    user_id: str
    """The user at that IdP."""
    challenge_expires_ms: int
    """When the IdP's challenge expires, Unix milliseconds."""


@dataclasses.dataclass(frozen=True)
class ExpiringCursor(_Result):
    """Where a page of the expiring listing ends (give it back as ``after``)."""

    challenge_expires_ms: int
    """The last entry's expiry."""
    key_id: str
    """The last entry's key."""
    passkey_template: str
    """The last entry's passkey template."""


@dataclasses.dataclass(frozen=True)
class ExpiringPage(_Result):
    """One page of pending registrations expiring soon, soonest first."""

    pending: tuple[ExpiringRegistration, ...]
    """The registrations."""
    next_after: ExpiringCursor | None
    """The ``after`` for the next page; ``None`` when this page is the last."""

    _convert = {
        "pending": _tuple_of(ExpiringRegistration),
        "next_after": _optional(ExpiringCursor),
    }


@dataclasses.dataclass(frozen=True)
class TouchKey(_Result):
    """"Touch your key": the key waits for the person at it."""

    kind: ClassVar[str] = "touch_key"
    step: str
    """The CTAP operation waiting (``makeCredential``, ``getAssertion``, ``reset``, ...)."""


@dataclasses.dataclass(frozen=True)
class FingerprintSample(_Result):
    """A fingerprint sample was taken during enrolment."""

    kind: ClassVar[str] = "fingerprint_sample"
    last_status: int
    """The key's lastEnrollSampleStatus (0 = good sample)."""
    remaining: int
    """Samples still needed."""


@dataclasses.dataclass(frozen=True)
class EnrollFingerprint(_Result):
    """A fingerprint is about to be enrolled: "place your finger"."""

    kind: ClassVar[str] = "enroll_fingerprint"
    number: int
    """Which one (1-based)."""
    of: int
    """How many."""


@dataclasses.dataclass(frozen=True)
class OtherPrompt(_Result):
    """A prompt this version does not know how to name."""

    kind: ClassVar[str] = "other"
    description: str
    """Its description."""


Prompt = TouchKey | FingerprintSample | EnrollFingerprint | OtherPrompt
"""A prompt for the person at the key while an operation waits."""

_PROMPTS: dict[str, type[TouchKey | FingerprintSample | EnrollFingerprint | OtherPrompt]] = {
    c.kind: c for c in (TouchKey, FingerprintSample, EnrollFingerprint, OtherPrompt)
}


def _prompt_from_native(data: Any) -> Prompt:
    """A prompt from its native dict (``{"kind": ..., ...}``); a kind this version does
    not know becomes an :class:`OtherPrompt` describing it."""
    if not isinstance(data, dict):
        raise _mismatch("Prompt", f"expected a dict, got {type(data).__name__}")
    fields = dict(data)
    cls = _PROMPTS.get(fields.pop("kind", None))
    if cls is None:
        return OtherPrompt(description=repr(data))
    return cls._from_native(fields)
