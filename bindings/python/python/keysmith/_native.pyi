"""Type stubs for keysmith._native, the native half of the package (src/lib.rs).

Results are JSON-shaped dicts and lists; the package (keysmith.session) turns them into
dataclasses. Errors are raised as keysmith.errors classes.
"""

from collections.abc import Callable
from types import TracebackType
from typing import Any, final

__all__ = [
    "Session",
    "Device",
    "list_devices",
    "template_check",
    "configure_logging",
    "enable_logging",
    "disable_logging",
    "flush_logging",
    "version",
    "__version__",
    "DeviceHalf",
    "ServerHalf",
    "describe",
    "user_passkeys",
    "keys_needing_reissue",
    "stale_keys",
    "sms_readiness",
]

__version__: str

def version() -> str:
    """The library version."""

def list_devices() -> dict[str, Any]:
    """The FIDO keys on USB and the PC/SC readers: ``{"devices": [...], "unavailable": [...]}``."""

def template_check(text: str) -> dict[str, Any]:
    """Validates a credential template set (TOML or JSON text); returns its summary."""

def configure_logging(config: dict[str, Any] | str) -> None:
    """Configures process-wide logging from a dict or JSON text (the CLI's ``[log]`` keys)."""

def enable_logging(level: str = "info") -> None:
    """Sends the library's log records to Python's ``logging`` at ``level`` and above,
    to loggers named ``keysmith.<crate>.<module>``; records stop going to stderr."""

def disable_logging() -> None:
    """Stops sending records to ``logging`` (after delivering those queued)."""

def flush_logging() -> None:
    """Delivers the records logged so far to ``logging`` now."""

def describe(message: bytes) -> dict[str, Any]:
    """A JSON view (dict) of a split message for logs; secrets left out, nothing verified."""

def user_passkeys(session: Session, user: str) -> dict[str, Any]:
    """Every passkey ``user`` holds at every IdP connection, beside the keys issued them."""

def keys_needing_reissue(session: Session) -> list[dict[str, Any]]:
    """Keys marked as needing reissue, each with ``reason``."""

def stale_keys(session: Session, days: int) -> list[dict[str, Any]]:
    """Active keys not used during the last ``days`` days."""

def sms_readiness(
    session: Session, connection: str | None = None, group: str | None = None
) -> dict[str, Any]:
    """The SMS/voice retirement readiness of ``group``'s users (or the directory's)."""

@final
class Device:
    """An opened security key (``usb:PATH``, ``nfc:READER``, ``softkey:STATEFILE``); a
    context manager that closes it."""

    def __new__(cls, spec: str) -> Device:
        """Opens the key named by ``spec``."""
    def close(self) -> None:
        """Closes the key; later calls raise ``UsageError`` (reason ``closed``)."""
    def __enter__(self) -> Device:
        """Returns the device itself."""
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool:
        """Closes the device; returns False (exceptions propagate)."""
    def info(self) -> dict[str, Any]:
        """What the key says about itself (authenticatorGetInfo), as a dict."""
    def cancel(self) -> None:
        """Cancels the operation waiting on this key for the user ("touch your key")."""
    @property
    def spec(self) -> str:
        """The spec it was opened with."""
    @property
    def serial(self) -> str | None:
        """Its serial number, if known."""

@final
class Session:
    """A keysmith session over a repository, IdP connections and templates; a context
    manager that closes it."""

    def __new__(cls, config: dict[str, Any] | str) -> Session:
        """Opens the repository, IdP connections and templates ``config`` names."""
    def close(self) -> None:
        """Closes the session; later calls raise ``UsageError`` (reason ``closed``)."""
    def __enter__(self) -> Session:
        """Returns the session itself."""
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool:
        """Closes the session; returns False (exceptions propagate)."""
    def set_prompt(self, callback: Callable[[dict[str, Any]], object] | None) -> None:
        """Sends prompts (dicts) to ``callback`` on the calling thread; ``None`` stops them."""
    @property
    def actor(self) -> str:
        """The actor recorded for operator calls."""
    def templates(self) -> list[str]:
        """The names of the loaded credential templates."""
    def add_template(self, text: str) -> dict[str, Any]:
        """Loads (or replaces) a credential template set; returns its summary."""
    def issue(
        self,
        device: Device,
        template: str,
        user: str,
        serial: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Central issuance of the key in ``device`` to ``user``; returns the key."""
    def issue_and_activate(
        self,
        device: Device,
        template: str,
        user: str,
        holder_pin: str,
        serial: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Issuance with the holder's PIN (templates that activate at issuance)."""
    def activate(self, device: Device, key_id: str, holder_pin: str) -> dict[str, Any]:
        """Activation by the holder with their new PIN; returns the key."""
    def inactivate(self, key_id: str) -> dict[str, Any]:
        """Inactivate; returns the key."""
    def revoke(self, key_id: str, force: bool | None = None) -> dict[str, Any]:
        """Revoke; ``force`` (None = the template's setting) forces the IdP deletion."""
    def retire(self, key_id: str) -> dict[str, Any]:
        """Retire; returns the key."""
    def unregister(self, key_id: str) -> dict[str, Any]:
        """Unregister (records forgotten, audit kept); returns the key."""
    def reissue(
        self,
        device: Device,
        key_id: str,
        user: str,
        serial: str | None = None,
        actor: str | None = None,
    ) -> dict[str, Any]:
        """Reissue the key to ``user``; returns the key."""
    def sign_in(self, device: Device, key_id: str, pin: str) -> list[dict[str, Any]]:
        """Signs in with the key's passkeys; returns a list of verified sign-ins."""
    def key(self, key_id: str) -> dict[str, Any]:
        """Everything recorded about a key: ``{"key", "passkeys", "pending", "audit"}``."""
    def list_keys(
        self, user: str | None = None, state: str | None = None, serial: str | None = None
    ) -> list[dict[str, Any]]:
        """Keys matching every given criterion (all keys without any)."""
    def audit(self, key_id: str) -> list[dict[str, Any]]:
        """The audit log of a key, oldest first."""
    def audit_verify(self) -> dict[str, Any]:
        """Checks the whole audit log (hash chain and MACs)."""
    def replay_journal(self) -> list[dict[str, Any]]:
        """Replays the IdP side-effect journal."""
    def check_connection(self, connection: str) -> int:
        """Checks an IdP connection; returns how long it took (ms)."""
    def search_users(
        self, connection: str, prefix: str, top: int = 10
    ) -> list[dict[str, Any]]:
        """Directory users whose display name or UPN starts with ``prefix``."""
    def self_service_begin(self) -> dict[str, Any]:
        """Starts a self-service sign-in: returns ``{"nonce", "expires_at_ms"}``."""
    def self_set_pin(
        self, device: Device, key_id: str, id_token: str, nonce: str, new_pin: str
    ) -> dict[str, Any]:
        """Self-service PIN set with the holder's OIDC ID token and nonce; returns the key."""
    def self_issue(
        self,
        device: Device,
        id_token: str,
        nonce: str,
        template: str,
        new_pin: str,
        serial: str | None = None,
    ) -> dict[str, Any]:
        """Self-issuance with the holder's OIDC ID token and nonce; returns the key."""
    def reconcile(
        self, users: list[str], fix: bool = False, delete_unknown: bool = False
    ) -> dict[str, Any]:
        """Compares the repository with every IdP connection for ``users``."""
    def bulk_create(self, kind: str, csv_text: str) -> dict[str, Any]:
        """Records a bulk job from CSV text with a header row; returns the job."""
    def bulk_run(
        self,
        job_id: int,
        device: Callable[[dict[str, Any]], object] | None = None,
        progress: Callable[[dict[str, Any]], object] | None = None,
        workers: int = 1,
        rate: float | None = None,
        template: str | None = None,
        retry_failed: bool = True,
        fix: bool = False,
        delete_unknown: bool = False,
        keep_items: bool = True,
    ) -> dict[str, Any]:
        """Runs (or resumes) a bulk job; Ctrl-C stops it between rows."""
    def list_keys_page(self, after: str | None = None, limit: int = 100) -> dict[str, Any]:
        """One page of every key, sorted by id."""
    def list_expiring_page(
        self, within_ms: int, after: dict[str, Any] | str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """One page of the pending registrations expiring within ``within_ms``."""

@final
class DeviceHalf:
    """The device half of one split session."""

    def __new__(cls, config: dict[str, Any] | str) -> DeviceHalf:
        """A device half from ``config`` (dict or JSON text)."""
    @property
    def hello(self) -> bytes:
        """The ``AgentHello`` to send first."""
    @property
    def agent_id(self) -> str:
        """The agent id (hex)."""
    @property
    def agent_public_key(self) -> str:
        """The agent's public key (SEC1 hex), what the server enrols."""
    def take_generated_key_pem(self) -> str | None:
        """The generated agent key (PKCS#8 PEM), once."""
    def report(self, device: Device, serial_claim: str | None = None) -> bytes:
        """A ``DeviceReport`` of ``device``."""
    def request(self, request: dict[str, Any] | str) -> bytes:
        """A ``Request`` (dict or JSON: operation, template, key_id)."""
    def ready(self) -> bytes:
        """A ``Ready`` poll."""
    def holder_auth(self, id_token: str) -> bytes:
        """A ``HolderAuth`` with the holder's ID token."""
    def holder_graph_result(self, result: dict[str, Any] | str) -> bytes:
        """The answer to a ``holder_graph`` event: the signed ``HolderGraphResult``."""
    def abort(self, reason: str) -> bytes:
        """An ``Abort`` (``cancelled``, ``key_removed``, ...)."""
    def receive(self, message: bytes, now_ms: int) -> dict[str, Any]:
        """Takes a server message received at monotonic ``now_ms``; returns the event dict."""
    def run_job(
        self,
        device: Device,
        now_ms: int,
        new_pin: Callable[[int, bool], str | None] | None = None,
        holder_pin: Callable[[], str | None] | None = None,
        prompt: Callable[[dict[str, Any]], object] | None = None,
    ) -> bytes:
        """Runs the accepted job on ``device``; returns the ``JobResult`` to send."""
    def close(self) -> None:
        """Ends the session."""

@final
class ServerHalf:
    """The server half over a ``Session``'s engine."""

    def __new__(cls, session: Session, config: dict[str, Any] | str) -> ServerHalf:
        """A server half over ``session`` with ``config`` (dict or JSON text)."""
    def public_key_pem(self) -> str:
        """The server's public key (SPKI PEM): what device halves pin."""
    def take_generated_key_pem(self) -> str | None:
        """The server key generated at construction (PKCS#8 PEM), once."""
    def add_agent(
        self,
        public_key: str,
        agent_class: str,
        approved: bool = True,
        station: str | None = None,
    ) -> str:
        """Enrols an agent; returns its agent id."""
    def approve_agent(self, agent_id: str) -> None:
        """Approves an enrolled agent."""
    def revoke_agent(self, agent_id: str) -> None:
        """Revokes an agent."""
    def open(self, hello: bytes, now_ms: int | None = None) -> tuple[str, bytes]:
        """Opens a session from an ``AgentHello``; returns ``(session_id, reply)``."""
    def handle(self, session_id: str, message: bytes, now_ms: int | None = None) -> bytes:
        """Handles a device message of ``session_id``; returns the reply."""
    def queue_station_work(
        self, agent_id: str, request: dict[str, Any] | str, actor: str
    ) -> str:
        """Queues operator work for a station; returns the work id."""
    def station_work(self, work_id: str) -> dict[str, Any]:
        """Where queued work stands (dict)."""
