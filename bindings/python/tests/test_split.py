"""The split deployment from Python: a ServerHalf (over a Session on SQLite and the Entra
emulator) and DeviceHalf objects on a software key exchange only bytes. An operator's
issuance is queued for a station and run there; the holder, at another agent, signs in
(ID token bound to the session by its nonce) and sets their PIN, which is in no message;
the key then signs in. A flipped byte is refused by either half, and nothing changes."""

import itertools
from pathlib import Path
from typing import Any

import pytest
from test_lifecycle import KIM, PIN, SELF_TEMPLATE, emulator, holder_id_token, make_config

import keysmith
from keysmith.split import Established, JobAck, JobReady, NeedHolderAuth, Wait

__all__ = ["emulator"]


class World:
    """The server half, one software key, a monotonic clock and every message sent."""

    def __init__(self, emu: dict[str, Any], tmp_path: Path) -> None:
        self.session = keysmith.Session(make_config(emu, tmp_path))
        self.session.add_template(SELF_TEMPLATE.format(
            issuer=emu["oidc_issuer"], audience=emu["client_id"], jwks=emu["jwks_url"]))
        self.server = keysmith.ServerHalf(self.session, {"allow_software_keys": True})
        pem = self.server.take_generated_key_pem()
        assert pem is not None and "PRIVATE KEY" in pem
        assert self.server.take_generated_key_pem() is None
        self.pinned = self.server.public_key_pem()
        self.device = keysmith.Device("softkey:" + str(tmp_path / "split-key.json"))
        self.clock = itertools.count(1)
        self.wire: list[bytes] = []
        self.prompts: list[keysmith.Prompt] = []

    def agent(self, agent_class: str, holder_ui: bool) -> tuple[keysmith.DeviceHalf, str]:
        half = keysmith.DeviceHalf({
            "server_keys": [self.pinned],
            "capabilities": {"interactive_holder_ui": holder_ui},
            "host": {"name": "py-agent", "os": "linux"},
        })
        agent_id = self.server.add_agent(half.agent_public_key, agent_class)
        assert agent_id == half.agent_id
        opened = self.server.open(half.hello)
        self.wire += [half.hello, opened.reply]
        assert isinstance(half.receive(opened.reply, next(self.clock)), Established)
        return half, opened.session_id

    def exchange(self, half: keysmith.DeviceHalf, sid: str, msg: bytes,
                 pin: str | None = None) -> keysmith.split.DeviceEvent:
        """Sends ``msg``, runs every job answered, returns the first other event."""
        while True:
            reply = self.server.handle(sid, msg)
            self.wire += [msg, reply]
            event = half.receive(reply, next(self.clock))
            if not isinstance(event, JobReady):
                return event
            msg = half.run_job(self.device, next(self.clock),
                               new_pin=lambda _min, _confirm: pin,
                               holder_pin=lambda: pin,
                               prompt=self.prompts.append)


def test_station_issuance_then_holder_activation_across_the_split(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    w = World(emulator, tmp_path)

    # The operator queues the issuance; the station polls and runs it.
    station, sid = w.agent("station", False)
    work = w.server.queue_station_work(station.agent_id, KIM, "py-self", "operator:py")
    assert w.server.station_work(work).state == "queued"
    assert isinstance(w.exchange(station, sid, station.report(w.device, "SN-PY-1")), Wait)
    ack = w.exchange(station, sid, station.ready())
    assert isinstance(ack, JobAck), ack
    assert ack.state == "issued"
    assert w.server.station_work(work).state == "done"
    key_id = ack.key_id

    # The holder at their own agent: sign in bound to this session, then set the PIN.
    holder, sid = w.agent("holder", True)
    w.exchange(holder, sid, holder.report(w.device), PIN)
    need = w.exchange(holder, sid, holder.request("activate"), PIN)
    assert isinstance(need, NeedHolderAuth), need
    assert need.nonce not in repr(need)
    token = holder_id_token(emulator, KIM, need.nonce)
    auth = holder.holder_auth(token)
    view = keysmith.describe(auth)
    assert view["kind"] == "HolderAuth" and token not in str(view)
    ack = w.exchange(holder, sid, auth, PIN)
    assert isinstance(ack, JobAck), ack
    assert (ack.key_id, ack.state, ack.registered) == (key_id, "active", 1)

    # The PIN reached the key (a sign-in with it verifies) and no message.
    assert len(w.session.sign_in(w.device, key_id, PIN)) == 1
    assert not any(PIN.encode() in m for m in w.wire)
    assert any(isinstance(p, keysmith.TouchKey) for p in w.prompts)
    assert keysmith.describe(w.wire[0])["kind"] == "AgentHello"


def test_a_flipped_byte_is_refused_by_either_half_and_changes_nothing(
        emulator: dict[str, Any], tmp_path: Path) -> None:
    w = World(emulator, tmp_path)
    holder, sid = w.agent("holder", True)
    report = holder.report(w.device)

    flipped = bytearray(report)
    flipped[-1] ^= 0x01
    with pytest.raises(keysmith.SplitRefused) as e:
        w.server.handle(sid, bytes(flipped))
    assert e.value.refusal_code == "BadSignature"
    assert isinstance(e.value, keysmith.UsageError)

    # The server half is unchanged: the genuine message is accepted.
    reply = w.server.handle(sid, report)
    bad_reply = bytearray(reply)
    bad_reply[-1] ^= 0x80
    with pytest.raises(keysmith.SplitRefused) as e:
        holder.receive(bytes(bad_reply), next(w.clock))
    assert e.value.refusal_code == "BadSignature"
    # ... and so is the device half.
    holder.receive(reply, next(w.clock))

    # An agent the server does not know is refused at its hello.
    stranger = keysmith.DeviceHalf({"server_keys": [w.pinned]})
    assert stranger.take_generated_key_pem() is not None
    with pytest.raises(keysmith.SplitRefused) as e:
        w.server.open(stranger.hello)
    assert e.value.refusal_code == "UnknownKey"
