"""The split deployment's two halves, for a program that carries the messages itself
(``docs/split-embedding.md``).

* :class:`DeviceHalf` runs where the security key is attached: bytes in, bytes out; the
  holder's PIN comes from the ``new_pin``/``holder_pin`` callables of
  :meth:`DeviceHalf.run_job` and goes to the key, never into a message.
* :class:`ServerHalf` runs beside the repository and the IdP (over a :class:`Session`).
* :func:`describe` gives a dict view of any message for logs (secrets left out).

A message a half does not accept raises :class:`keysmith.SplitRefused` with the
protocol's stable ``refusal_code`` (``BadSignature``, ``SessionBroken``, ...).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from keysmith import _native
from keysmith.errors import InternalError
from keysmith.results import Prompt, _prompt_from_native
from keysmith.session import Device, Session

__all__ = [
    "DeviceHalf",
    "ServerHalf",
    "ServerOpened",
    "StationWorkStatus",
    "DeviceEvent",
    "Established",
    "NeedHolderAuth",
    "JobReady",
    "JobRefused",
    "JobAck",
    "Refused",
    "Wait",
    "Done",
    "Retransmission",
    "HolderGraph",
    "describe",
]


@dataclasses.dataclass(frozen=True)
class Established:
    """The server's hello was accepted: the session is established."""


@dataclasses.dataclass(frozen=True)
class NeedHolderAuth:
    """The holder must sign in (OpenID Connect) with ``nonce``, then
    :meth:`DeviceHalf.holder_auth` with the ID token."""

    issuer: str
    client_id: str
    scopes: tuple[str, ...]
    nonce: str = dataclasses.field(repr=False)
    login_hint: str | None
    max_age_s: int
    session_code: str


@dataclasses.dataclass(frozen=True)
class JobReady:
    """A checked job: run it with :meth:`DeviceHalf.run_job`."""

    operation: str
    steps: int


@dataclasses.dataclass(frozen=True)
class JobRefused:
    """The job was refused before any step ran; send ``reply`` (an Abort)."""

    reason: str
    reply: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class JobAck:
    """The server accepted a job's result."""

    key_id: str
    state: str
    needs_reissue: bool
    registered: int


@dataclasses.dataclass(frozen=True)
class Refused:
    """The server refused something (``code``: the protocol's stable refusal code)."""

    code: str
    reason: str
    needs_reissue: bool | None
    step: str | None


@dataclasses.dataclass(frozen=True)
class Wait:
    """Nothing to do yet: poll (:meth:`DeviceHalf.ready`) after ``retry_ms``."""

    retry_ms: int


@dataclasses.dataclass(frozen=True)
class Done:
    """The session is finished."""

    key_id: str | None
    state: str | None


@dataclasses.dataclass(frozen=True)
class HolderGraph:
    """Delegated registration: make this Graph call with the holder's delegated token
    (never send the token to the server) and answer with
    :meth:`DeviceHalf.holder_graph_result`."""

    op: str
    method: str
    path: str
    body: str | None = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class Retransmission:
    """A repeat of the last server message; send ``reply`` again when there is one."""

    reply: bytes | None = dataclasses.field(repr=False)


DeviceEvent = (
    Established | NeedHolderAuth | JobReady | JobRefused | JobAck | Refused | Wait | Done
    | Retransmission | HolderGraph
)


def _event(data: dict[str, Any]) -> DeviceEvent:
    fields = dict(data)
    kind = fields.pop("event", None)
    try:
        if kind == "established":
            return Established(**fields)
        if kind == "need_holder_auth":
            fields["scopes"] = tuple(fields["scopes"])
            return NeedHolderAuth(**fields)
        if kind == "job":
            return JobReady(**fields)
        if kind == "job_refused":
            return JobRefused(reason=fields["reason"], reply=bytes.fromhex(fields["reply"]))
        if kind == "job_ack":
            return JobAck(**fields)
        if kind == "refused":
            return Refused(**fields)
        if kind == "wait":
            return Wait(**fields)
        if kind == "done":
            return Done(**fields)
        if kind == "holder_graph":
            return HolderGraph(**fields)
        if kind == "retransmission":
            reply = fields["reply"]
            return Retransmission(reply=None if reply is None else bytes.fromhex(reply))
    except (TypeError, KeyError, ValueError) as e:
        raise InternalError(
            f"split event {kind!r}: {e} (package and native module differ)"
        ) from e
    raise InternalError(f"split event {kind!r} unknown to this package version")


@dataclasses.dataclass(frozen=True)
class ServerOpened:
    """A session the server half opened: its id and the ServerHello to send back."""

    session_id: str
    reply: bytes = dataclasses.field(repr=False)


@dataclasses.dataclass(frozen=True)
class StationWorkStatus:
    """Where operator work queued for a station stands (``queued``, ``taken``, ``done``,
    ``failed``)."""

    work_id: str
    agent_id: str
    state: str
    actor: str
    session_id: str | None
    outcome: str | None


def _config(config: Mapping[str, Any] | str) -> dict[str, Any] | str:
    return config if isinstance(config, str) else dict(config)


class DeviceHalf:
    """The device half of one session: ``DeviceHalf(config)`` with ``agent_key_pem``
    (PKCS#8; absent: generated, see :meth:`take_generated_key_pem`), ``server_keys``
    (SPKI PEM or SEC1 hex, pinned), ``capabilities``, ``host``, ``agent_version``.
    Send :attr:`hello` first; ``now_ms`` arguments are a monotonic clock."""

    __slots__ = ("_native",)

    def __init__(self, config: Mapping[str, Any] | str) -> None:
        """A device half from ``config`` (a mapping or JSON text)."""
        self._native = _native.DeviceHalf(_config(config))

    @property
    def hello(self) -> bytes:
        """The AgentHello to send first."""
        return self._native.hello

    @property
    def agent_id(self) -> str:
        """The agent id (hex of SHA-256 of its public key)."""
        return self._native.agent_id

    @property
    def agent_public_key(self) -> str:
        """The agent's public key (SEC1 hex): what the server enrols."""
        return self._native.agent_public_key

    def take_generated_key_pem(self) -> str | None:
        """The agent key generated at construction (PKCS#8 PEM), once."""
        return self._native.take_generated_key_pem()

    def report(self, device: Device, serial_claim: str | None = None) -> bytes:
        """A DeviceReport of the attached key."""
        return self._native.report(device._native, serial_claim)

    def request(
        self, operation: str, template: str | None = None, key_id: str | None = None
    ) -> bytes:
        """A Request: ``work``, ``activate``, ``self_issue``, ``verify`` or ``reset``."""
        return self._native.request(
            {"operation": operation, "template": template, "key_id": key_id}
        )

    def ready(self) -> bytes:
        """A Ready poll."""
        return self._native.ready()

    def holder_auth(self, id_token: str) -> bytes:
        """A HolderAuth with the holder's ID token."""
        return self._native.holder_auth(id_token)

    def holder_graph_result(
        self,
        op: str,
        status: int,
        body: str,
        error: str | None = None,
        request_id: str | None = None,
    ) -> bytes:
        """The answer to a :class:`HolderGraph` call as Graph gave it (``status`` 0 with
        ``error`` when no answer came): the signed HolderGraphResult to send."""
        return self._native.holder_graph_result(
            {
                "op": op,
                "status": status,
                "body": body,
                "error": error,
                "request_id": request_id,
            }
        )

    def abort(self, reason: str) -> bytes:
        """An Abort (``cancelled``, ``key_removed``, ...)."""
        return self._native.abort(reason)

    def receive(self, message: bytes, now_ms: int) -> DeviceEvent:
        """Takes a server message; raises :class:`keysmith.SplitRefused` when refused."""
        return _event(self._native.receive(message, now_ms))

    def run_job(
        self,
        device: Device,
        now_ms: int,
        new_pin: Callable[[int, bool], str | None] | None = None,
        holder_pin: Callable[[], str | None] | None = None,
        prompt: Callable[[Prompt], object] | None = None,
    ) -> bytes:
        """Runs the accepted job on ``device``; ``new_pin(min_len, confirm)`` and
        ``holder_pin()`` give the holder's PIN (``None`` cancels), ``prompt`` receives
        prompts. Returns the JobResult to send."""
        native_prompt: Callable[[dict[str, Any]], object] | None = None
        if prompt is not None:
            cb = prompt

            def native_prompt(p: dict[str, Any]) -> object:
                return cb(_prompt_from_native(p))

        return self._native.run_job(device._native, now_ms, new_pin, holder_pin, native_prompt)

    def close(self) -> None:
        """Ends the session (its key and any remembered PIN are zeroized)."""
        self._native.close()

    def __repr__(self) -> str:
        return f"keysmith.DeviceHalf(agent_id={self.agent_id!r})"


class ServerHalf:
    """The server half over ``session``'s engine: ``ServerHalf(session, config)`` with
    ``server_key_pem`` (PKCS#8, the key agents pin; absent: generated), ``allow_software_keys`` (tests),
    ``session_ttl_ms``, ``message_ttl_ms``, ``poll_ms``. ``now_ms`` defaults to the
    wall clock (the server's clock decides)."""

    __slots__ = ("_native",)

    def __init__(self, session: Session, config: Mapping[str, Any] | str) -> None:
        """A server half over ``session``'s engine with ``config`` (a mapping or JSON
        text)."""
        self._native = _native.ServerHalf(session._native, _config(config))

    def public_key_pem(self) -> str:
        """The server's public key (SPKI PEM)."""
        return self._native.public_key_pem()

    def take_generated_key_pem(self) -> str | None:
        """The server key generated at construction (no ``server_key_pem`` given), as
        PKCS#8 PEM, once: keep it, agents pin its public key."""
        return self._native.take_generated_key_pem()

    def add_agent(
        self,
        public_key: str,
        agent_class: str,
        approved: bool = True,
        station: str | None = None,
    ) -> str:
        """Enrols an agent (``station`` or ``holder``); returns its agent id."""
        return self._native.add_agent(public_key, agent_class, approved, station)

    def approve_agent(self, agent_id: str) -> None:
        """Approves an enrolled agent."""
        self._native.approve_agent(agent_id)

    def revoke_agent(self, agent_id: str) -> None:
        """Revokes an agent: its sessions are refused from their next message."""
        self._native.revoke_agent(agent_id)

    def open(self, hello: bytes, now_ms: int | None = None) -> ServerOpened:
        """Opens a session from an AgentHello."""
        session_id, reply = self._native.open(hello, now_ms)
        return ServerOpened(session_id=session_id, reply=reply)

    def handle(self, session_id: str, message: bytes, now_ms: int | None = None) -> bytes:
        """Handles a device message; returns the reply to send."""
        return self._native.handle(session_id, message, now_ms)

    def queue_station_work(self, agent_id: str, user: str, template: str, actor: str) -> str:
        """Queues a central issuance for the station ``agent_id``; returns the work id."""
        return self._native.queue_station_work(
            agent_id, {"operation": "issue", "user": user, "template": template}, actor
        )

    def station_work(self, work_id: str) -> StationWorkStatus:
        """Where queued work stands."""
        return StationWorkStatus(**self._native.station_work(work_id))

    def __repr__(self) -> str:
        return "keysmith.ServerHalf(...)"


def describe(message: bytes) -> dict[str, Any]:
    """A dict view of a split message for logs: direction, kind, session, seq, job, the
    signer's key id and the body's non-secret fields. Nothing is verified."""
    return _native.describe(message)
