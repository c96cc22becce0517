"""Sessions and devices: the typed layer over ``keysmith._native``.

Every call blocks (without holding the GIL). Callbacks (prompts, bulk device and
progress) run on the thread that called the operation. Ctrl-C while a call waits for
the person at the key ("touch your key") cancels the device operation and raises
``KeyboardInterrupt`` within about a second, once the operation has ended.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

from keysmith import _native
from keysmith.passkeys import ReadinessReport, ReissueEntry, StaleEntry, UserPasskeys
from keysmith.results import (
    AuditRecord,
    BulkJob,
    BulkProgress,
    BulkRow,
    BulkSummary,
    DeviceInfo,
    DeviceList,
    DriftReport,
    ExpiringCursor,
    ExpiringPage,
    Key,
    KeyDetails,
    KeyPage,
    Prompt,
    ReplayResult,
    SelfServiceStart,
    SignInResult,
    TemplateSummary,
    User,
    _prompt_from_native,
)

__all__ = [
    "Device",
    "Session",
    "list_devices",
    "template_check",
    "configure_logging",
    "enable_logging",
    "disable_logging",
    "flush_logging",
]


def _config(config: Mapping[str, Any] | str) -> dict[str, Any] | str:
    return config if isinstance(config, str) else dict(config)


class Device:
    """An opened security key: ``Device("usb:/dev/hidraw3")``, ``Device("nfc:READER")``
    or ``Device("softkey:/path/state.json")``, a software key for tests and demos
    (``softkey:PATH?presence=never`` makes its holder never touch it; also ``approve``,
    ``deny``, ``timeout`` and ``<N>ms``).

    A context manager: ``with keysmith.Device(spec) as key:`` closes the key at the end
    of the block (see :meth:`close`)."""

    __slots__ = ("_native",)

    def __init__(self, spec: str) -> None:
        """Opens the key named by ``spec``; raises :class:`keysmith.DeviceNotFound` (or
        another :class:`keysmith.DeviceError`) when it cannot."""
        self._native = _native.Device(spec)

    def close(self) -> None:
        """Closes the key (an operation running on it finishes first). Later calls raise
        :class:`keysmith.UsageError` with ``reason`` ``closed``; closing again does
        nothing."""
        self._native.close()

    def __enter__(self) -> Self:
        """Returns the device itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Closes the device; an exception raised in the block propagates."""
        self.close()

    def info(self) -> DeviceInfo:
        """What the key says about itself (authenticatorGetInfo)."""
        return DeviceInfo._from_native(self._native.info())

    def cancel(self) -> None:
        """Cancels the operation waiting on this key for the user ("touch your key");
        call it from another thread or from the prompt callback. The waiting call
        raises :class:`keysmith.Cancelled` (a :class:`keysmith.DeviceError`)."""
        self._native.cancel()

    @property
    def spec(self) -> str:
        """The spec it was opened with."""
        return self._native.spec

    @property
    def serial(self) -> str | None:
        """Its serial number, if known."""
        return self._native.serial

    def __repr__(self) -> str:
        """``keysmith.Device('SPEC')``."""
        return "keysmith." + repr(self._native).removeprefix("keysmith._native.")


def _require_callable(method: str, name: str, value: Any) -> None:
    if not callable(value):
        raise TypeError(
            f"{method}: {name} must be callable or None, not {type(value).__name__}"
        )


class Session:
    """A keysmith session: ``Session(config)`` with ``config`` a mapping or JSON text
    (``repository``, ``pin_key``, ``station``, ``actor``, ``idp``, ``templates``,
    ``log``, ``mds_blob``/``mds_root``/``attestation_roots`` for attestation checked at
    issuance, ``allow_software_keys`` for ``softkey:`` devices in tests and demos; see the
    facade's ``Session::open``).

    A context manager: ``with keysmith.Session(config) as session:`` closes the session
    at the end of the block (see :meth:`close`)."""

    __slots__ = ("_native",)

    def __init__(self, config: Mapping[str, Any] | str) -> None:
        """Opens the repository, the IdP connections and the templates ``config``
        names; raises :class:`keysmith.UsageError` for a bad configuration."""
        self._native = _native.Session(_config(config))

    def close(self) -> None:
        """Closes the session: its repository connection closes once the operations
        running on it end. Later calls raise :class:`keysmith.UsageError` with
        ``reason`` ``closed``; closing again does nothing."""
        self._native.close()

    def __enter__(self) -> Self:
        """Returns the session itself."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Closes the session; an exception raised in the block propagates."""
        self.close()

    def set_prompt(self, callback: Callable[[Prompt], object] | None) -> None:
        """Sends prompts (:class:`keysmith.TouchKey`, ...) to ``callback`` on the thread
        running the operation; ``None`` stops them. Exceptions raised by the callback
        are reported as unraisable and do not stop the operation. A ``callback`` that is
        neither callable nor ``None`` raises ``TypeError`` here (not at the first prompt)."""
        if callback is None:
            self._native.set_prompt(None)
        else:
            _require_callable("set_prompt", "callback", callback)
            self._native.set_prompt(lambda p: callback(_prompt_from_native(p)))

    @property
    def actor(self) -> str:
        """The actor recorded for operator calls."""
        return self._native.actor

    def templates(self) -> list[str]:
        """The names of the loaded credential templates."""
        return self._native.templates()

    def add_template(self, text: str) -> TemplateSummary:
        """Loads (or replaces) a credential template set (TOML or JSON text)."""
        return TemplateSummary._from_native(self._native.add_template(text))

    def issue(
        self,
        device: Device,
        template: str,
        user: str,
        serial: str | None = None,
        actor: str | None = None,
    ) -> Key:
        """Central issuance of the key in ``device`` to ``user`` (object id or UPN)
        with credential template ``template``."""
        return Key._from_native(
            self._native.issue(device._native, template, user, serial, actor)
        )

    def issue_and_activate(
        self,
        device: Device,
        template: str,
        user: str,
        holder_pin: str,
        serial: str | None = None,
        actor: str | None = None,
    ) -> Key:
        """Issuance with the holder's PIN (templates that activate at issuance)."""
        return Key._from_native(
            self._native.issue_and_activate(
                device._native, template, user, holder_pin, serial, actor
            )
        )

    def activate(self, device: Device, key_id: str, holder_pin: str) -> Key:
        """Activation by the holder with their new PIN."""
        return Key._from_native(self._native.activate(device._native, key_id, holder_pin))

    def inactivate(self, key_id: str) -> Key:
        """Inactivates the key."""
        return Key._from_native(self._native.inactivate(key_id))

    def revoke(self, key_id: str, force: bool | None = None) -> Key:
        """Revokes the key; ``force`` (None: the template's setting) forces the IdP
        deletion."""
        return Key._from_native(self._native.revoke(key_id, force))

    def retire(self, key_id: str) -> Key:
        """Retires the key."""
        return Key._from_native(self._native.retire(key_id))

    def unregister(self, key_id: str) -> Key:
        """Unregisters the key (records forgotten, audit kept)."""
        return Key._from_native(self._native.unregister(key_id))

    def reissue(
        self,
        device: Device,
        key_id: str,
        user: str,
        serial: str | None = None,
        actor: str | None = None,
    ) -> Key:
        """Reissues the key to ``user``."""
        return Key._from_native(
            self._native.reissue(device._native, key_id, user, serial, actor)
        )

    def sign_in(self, device: Device, key_id: str, pin: str) -> list[SignInResult]:
        """Signs in with the key's passkeys; one result per verified sign-in."""
        return [
            SignInResult._from_native(s)
            for s in self._native.sign_in(device._native, key_id, pin)
        ]

    def key(self, key_id: str) -> KeyDetails:
        """Everything recorded about a key."""
        return KeyDetails._from_native(self._native.key(key_id))

    def list_keys(
        self, user: str | None = None, state: str | None = None, serial: str | None = None
    ) -> list[Key]:
        """Keys matching every given criterion (all keys without any); ``state`` is a
        :class:`keysmith.KeyState` or its name."""
        return [Key._from_native(k) for k in self._native.list_keys(user, state, serial)]

    def audit(self, key_id: str) -> list[AuditRecord]:
        """The audit log of a key, oldest first."""
        return [AuditRecord._from_native(a) for a in self._native.audit(key_id)]

    def audit_verify(self) -> dict[str, Any]:
        """Checks the whole audit log (hash chain and MACs under the session's PIN key).

        Returns ``{"ok", "records", "unchained", "first_bad_id", "reason"}``: ``ok`` is
        false and ``first_bad_id`` names the first record changed, removed or inserted
        outside keysmith.
        """
        return self._native.audit_verify()

    def replay_journal(self) -> list[ReplayResult]:
        """Replays the IdP side-effect journal."""
        return [ReplayResult._from_native(r) for r in self._native.replay_journal()]

    def check_connection(self, connection: str) -> int:
        """Checks an IdP connection; returns how long it took (ms)."""
        return self._native.check_connection(connection)

    def search_users(self, connection: str, prefix: str, top: int = 10) -> list[User]:
        """Directory users whose display name or UPN starts with ``prefix``."""
        return [User._from_native(u) for u in self._native.search_users(connection, prefix, top)]

    def self_service_begin(self) -> SelfServiceStart:
        """Starts a holder's sign-in: the nonce to send in the OpenID Connect
        authorization request and to pass, with the ID token, to :meth:`self_issue` or
        :meth:`self_set_pin`. Good once."""
        return SelfServiceStart._from_native(self._native.self_service_begin())

    def self_set_pin(
        self, device: Device, key_id: str, id_token: str, nonce: str, new_pin: str
    ) -> Key:
        """Self-service PIN set with the holder's OIDC ID token from the sign-in started
        with ``nonce``. A refusal is a :class:`UsageError` whose ``reason`` says which
        check failed (``nonce_missing``, ``token_replayed``, ``not_an_id_token``, ...)."""
        return Key._from_native(
            self._native.self_set_pin(device._native, key_id, id_token, nonce, new_pin)
        )

    def self_issue(
        self,
        device: Device,
        id_token: str,
        nonce: str,
        template: str,
        new_pin: str,
        serial: str | None = None,
    ) -> Key:
        """Self-issuance with the holder's OIDC ID token from the sign-in started with
        ``nonce``; refusals as for :meth:`self_set_pin`."""
        return Key._from_native(
            self._native.self_issue(device._native, id_token, nonce, template, new_pin, serial)
        )

    def user_passkeys(self, user: str) -> UserPasskeys:
        """Every passkey ``user`` (object id or UPN) holds at every IdP connection
        (security keys, Microsoft Authenticator, Windows Hello, synced providers), each
        with its ``kind`` and, when keysmith issued it, its ``key_id``; beside the keys
        keysmith issued them."""
        return UserPasskeys._from_native(_native.user_passkeys(self._native, user))

    def keys_needing_reissue(self) -> list[ReissueEntry]:
        """Keys marked as needing reissue, each with why (``user_renamed`` when
        reconciliation found the holder renamed since issuance)."""
        return [ReissueEntry._from_native(e) for e in _native.keys_needing_reissue(self._native)]

    def stale_keys(self, days: int) -> list[StaleEntry]:
        """Active keys none of whose passkeys signed in during the last ``days`` days, as
        reconciliation last read it (Entra: beta ``lastUsedDateTime``)."""
        return [StaleEntry._from_native(e) for e in _native.stale_keys(self._native, days)]

    def sms_readiness(
        self, connection: str | None = None, group: str | None = None
    ) -> ReadinessReport:
        """The SMS/voice retirement readiness of ``group``'s users (object id; ``None``:
        the whole directory) at ``connection`` (``None``: the first configured): who has
        no phishing-resistant method, with ``issue_csv`` for a bulk issue job; guests
        and B2B users set apart."""
        return ReadinessReport._from_native(
            _native.sms_readiness(self._native, connection, group)
        )

    def reconcile(
        self, users: Sequence[str], fix: bool = False, delete_unknown: bool = False
    ) -> DriftReport:
        """Compares the repository with every IdP connection for ``users`` (object ids
        or UPNs; empty: every user holding a key); ``fix`` repairs the drift,
        ``delete_unknown`` (needs ``fix``) also deletes passkeys nobody issued."""
        return DriftReport._from_native(self._native.reconcile(list(users), fix, delete_unknown))

    def bulk_create(self, kind: str, csv_text: str) -> BulkJob:
        """Records a bulk job (``kind``: ``issue``, ``revoke`` or ``reconcile``) from CSV
        text with a header row. The same text for the same kind is the same job while
        that job is unfinished (a row not run yet); once every row has run, the same text
        makes a new job. A finished job runs again only by its id (``bulk_run``)."""
        return BulkJob._from_native(self._native.bulk_create(kind, csv_text))

    def bulk_run(
        self,
        job_id: int,
        device: Callable[[BulkRow], str | None] | None = None,
        progress: Callable[[BulkProgress], object] | None = None,
        workers: int = 1,
        rate: float | None = None,
        template: str | None = None,
        retry_failed: bool = True,
        fix: bool = False,
        delete_unknown: bool = False,
        keep_items: bool = True,
    ) -> BulkSummary:
        """Runs (or resumes) a bulk job; several runners of one job share its rows (each
        row is claimed by one runner). ``device(row)`` is called for each issue row
        and returns the device spec to open; an exception, ``None`` or a non-str fails
        that row. ``progress(p)`` is called after each row; its exceptions are reported
        as unraisable. Both run on the calling thread; either that is neither callable
        nor ``None`` raises ``TypeError`` before the job runs.

        Ctrl-C stops the job between rows (a wait for a touch on the row's key is
        cancelled): the row in progress ends and is recorded, the rows not run stay to
        do (the job stays unfinished), and ``KeyboardInterrupt`` is raised, its
        ``__context__`` a :class:`keysmith.UsageError` with ``reason``
        ``bulk_stopped``. ``bulk_run(job_id)`` later resumes the job.

        ``keep_items=False`` returns the summary with ``items`` empty: each row reaches
        ``progress`` only, so a job of many rows does not hold one result per row."""
        if device is not None:
            _require_callable("bulk_run", "device", device)
        if progress is not None:
            _require_callable("bulk_run", "progress", progress)

        def on_device(row: dict[str, Any]) -> str | None:
            assert device is not None
            return device(BulkRow._from_native(row))

        def on_progress(p: dict[str, Any]) -> object:
            assert progress is not None
            return progress(BulkProgress._from_native(p))

        return BulkSummary._from_native(
            self._native.bulk_run(
                job_id,
                on_device if device is not None else None,
                on_progress if progress is not None else None,
                workers,
                rate,
                template,
                retry_failed,
                fix,
                delete_unknown,
                keep_items,
            )
        )

    def list_keys_page(self, after: str | None = None, limit: int = 100) -> KeyPage:
        """One page of every key, sorted by id; pass ``next_after`` as ``after`` for the
        next page until it is ``None``."""
        return KeyPage._from_native(self._native.list_keys_page(after, limit))

    def list_expiring_page(
        self, within_ms: int, after: ExpiringCursor | None = None, limit: int = 100
    ) -> ExpiringPage:
        """One page of the pending registrations whose challenge expires within
        ``within_ms`` from now, soonest first; pass ``next_after`` as ``after`` for the
        next page until it is ``None``."""
        cursor: Any = dataclasses.asdict(after) if isinstance(after, ExpiringCursor) else after
        return ExpiringPage._from_native(self._native.list_expiring_page(within_ms, cursor, limit))

    def __repr__(self) -> str:
        """``keysmith.Session(actor='...')``."""
        return "keysmith." + repr(self._native).removeprefix("keysmith._native.")


def list_devices() -> DeviceList:
    """The FIDO keys on USB and the PC/SC readers."""
    return DeviceList._from_native(_native.list_devices())


def template_check(text: str) -> TemplateSummary:
    """Validates a credential template set (TOML or JSON text)."""
    return TemplateSummary._from_native(_native.template_check(text))


def configure_logging(config: Mapping[str, Any] | str) -> None:
    """Configures process-wide logging from a mapping or JSON text (the CLI's ``[log]``
    keys: ``level``, ``destination``, ``format``)."""
    _native.configure_logging(_config(config))


def enable_logging(level: str | int = "info") -> None:
    """Sends keysmith's log records to Python's :mod:`logging`, at ``level`` and above
    (``"error"``, ``"warn"``, ``"info"``, ``"debug"``, ``"trace"``, or a
    :mod:`logging` level number such as ``logging.DEBUG``).

    Records go to loggers named ``keysmith.<crate>.<module>`` (children of the
    ``keysmith`` logger), with secrets already redacted; the message is the record's
    spans, text and fields. They are delivered on the thread of the keysmith call that
    logged them, while it waits and before it returns (:func:`flush_logging` delivers
    the records of background threads at once). Records stop going to stderr; a log
    file set by :func:`configure_logging` is kept.
    """
    if isinstance(level, int):
        level = _level_name(level)
    _native.enable_logging(level)


def disable_logging() -> None:
    """Stops sending records to :mod:`logging` (see :func:`enable_logging`); level and
    destination stay as they are."""
    _native.disable_logging()


def flush_logging() -> None:
    """Delivers the records logged so far to :mod:`logging` now."""
    _native.flush_logging()


def _level_name(level: int) -> str:
    for floor, name in ((40, "error"), (30, "warn"), (20, "info"), (10, "debug")):
        if level >= floor:
            return name
    return "trace"
