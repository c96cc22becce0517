"""The exceptions keysmith raises.

Every one is a :class:`KeysmithError`, and each also inherits the built-in exception a
caller would already catch: :class:`UsageError` and :class:`TemplateError` are
:class:`ValueError`\\ s, :class:`DeviceError` is an :class:`OSError` and
:class:`DeviceNotFound` also a :class:`FileNotFoundError`.

The native module raises them from the facade's error (``kind``, ``reason``,
``message``, ``ctap_status``, ``retries_left``): the class is chosen from ``reason``
first (``pin_invalid``, ``pin_blocked``, ``device_not_found``, ``cancelled``), else from
``kind``.
"""

from __future__ import annotations

from typing import ClassVar

__all__ = [
    "KeysmithError",
    "UsageError",
    "TemplateError",
    "TransitionError",
    "DeviceError",
    "PinInvalid",
    "PinBlocked",
    "DeviceNotFound",
    "Cancelled",
    "IdpError",
    "RepositoryError",
    "InternalError",
    "SplitRefused",
]

# The facade's ErrorKind codes (the C ABI's ks_status values).
_CODES = {
    "usage": 2,
    "device": 3,
    "idp": 4,
    "repository": 5,
    "template": 6,
    "transition": 7,
    "internal": 9,
}


class KeysmithError(Exception):
    """Base of every keysmith error.

    Attributes:
        kind: the facade's error kind (``usage``, ``device``, ``idp``, ``repository``,
            ``template``, ``transition``, ``internal``).
        reason: a stable snake_case word to branch on (``pin_invalid``,
            ``key_not_found``, ...); the kind's name when nothing more precise is known.
        message: what went wrong (never a secret); also ``str(error)``.
        code: the kind's stable number (the C ABI's ``ks_status``).
        ctap_status: the CTAP status byte the security key answered, if the key failed.
        retries_left: PIN (or UV) attempts left on the key, where the key reported them.
        refusal_code: the split protocol's stable refusal code (``BadSignature``,
            ``SessionBroken``, ``NotKeyOwner``, ...) when a half of the split refused a
            message (reason ``split_refused``); else ``None``.
    """

    default_kind: ClassVar[str] = "internal"

    kind: str
    reason: str
    message: str
    code: int
    ctap_status: int | None
    retries_left: int | None
    refusal_code: str | None

    def __init__(
        self,
        message: str,
        *,
        kind: str | None = None,
        reason: str | None = None,
        code: int | None = None,
        ctap_status: int | None = None,
        retries_left: int | None = None,
        refusal_code: str | None = None,
    ) -> None:
        """An error with ``message``; the keyword arguments set the attributes of the
        same names (``kind`` defaults to the class's, ``reason`` to ``kind``)."""
        super().__init__(message)
        self.message = message
        self.kind = kind or self.default_kind
        self.reason = reason or self.kind
        self.code = code if code is not None else _CODES.get(self.kind, _CODES["internal"])
        self.ctap_status = ctap_status
        self.retries_left = retries_left
        self.refusal_code = refusal_code

    def __str__(self) -> str:
        return self.message


class UsageError(KeysmithError, ValueError):
    """Bad input: config, unknown key/template/connection, an action not allowed."""

    default_kind = "usage"


class TemplateError(KeysmithError, ValueError):
    """A credential template is invalid or asks for something unsupported."""

    default_kind = "template"


class TransitionError(KeysmithError):
    """The action is not allowed in the key's state."""

    default_kind = "transition"


class DeviceError(KeysmithError, OSError):
    """The security key or its transport failed."""

    default_kind = "device"


class PinInvalid(DeviceError):
    """The key refused the PIN; ``retries_left`` says how many attempts remain."""


class PinBlocked(DeviceError):
    """The key's PIN is blocked (too many wrong PINs, or until it is power-cycled)."""


class DeviceNotFound(DeviceError, FileNotFoundError):
    """No such security key or reader (unplugged, wrong path or reader name)."""


class Cancelled(DeviceError):
    """The wait for the person at the key was cancelled (``Device.cancel()``)."""


class IdpError(KeysmithError):
    """The identity provider refused or failed."""

    default_kind = "idp"


class RepositoryError(KeysmithError):
    """The repository failed or refused."""

    default_kind = "repository"


class InternalError(KeysmithError):
    """A bug or an unexpected failure (including native results this package does not
    understand)."""


class SplitRefused(UsageError):
    """A half of the split deployment refused a message (a bad signature, a broken
    sequence, a revoked agent, ...); ``refusal_code`` is the protocol's stable code."""


_BY_REASON: dict[str, type[KeysmithError]] = {
    "pin_invalid": PinInvalid,
    "pin_blocked": PinBlocked,
    "pin_auth_blocked": PinBlocked,
    "device_not_found": DeviceNotFound,
    "cancelled": Cancelled,
    "split_refused": SplitRefused,
}

_BY_KIND: dict[str, type[KeysmithError]] = {
    "usage": UsageError,
    "device": DeviceError,
    "idp": IdpError,
    "repository": RepositoryError,
    "template": TemplateError,
    "transition": TransitionError,
    "internal": InternalError,
}


def error_class(kind: str, reason: str) -> type[KeysmithError]:
    """The exception class for a facade error: by ``reason`` first, else by ``kind``
    (an unknown kind is an :class:`InternalError`)."""
    return _BY_REASON.get(reason) or _BY_KIND.get(kind, InternalError)


def _from_native(
    kind: str,
    reason: str,
    message: str,
    code: int,
    ctap_status: int | None,
    retries_left: int | None,
    refusal_code: str | None = None,
) -> KeysmithError:
    """The exception for a facade error (called by the native module)."""
    return error_class(kind, reason)(
        message,
        kind=kind,
        reason=reason,
        code=code,
        ctap_status=ctap_status,
        retries_left=retries_left,
        refusal_code=refusal_code,
    )
