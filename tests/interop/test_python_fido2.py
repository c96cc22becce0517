"""Interoperability: Yubico's python-fido2 (an independent CTAP 2.1 client) drives our
software authenticator through a real pcscd + vpcd, in each reader personality.

Needs the PC/SC rig (scripts/pcsc-rig-start.sh) and the softkey example built
(cargo build -p fido-transport --example softkey). Run: pytest tests/interop
"""

import hashlib
import os
import subprocess
import time

import pytest
from fido2.attestation import PackedAttestation
from fido2.ctap import CtapError
from fido2.ctap2 import ClientPin, Config, Ctap2, CredentialManagement
from fido2.ctap2.pin import PinProtocolV1, PinProtocolV2
from fido2.pcsc import CtapPcscDevice
from fido2.webauthn import AttestationObject

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOFTKEY = os.path.join(ROOT, "target", "debug", "examples", "softkey")
VPCD = os.environ.get("PCSC_RIG_VPCD_ADDR", "127.0.0.1:35963")
RP = {"id": "login.microsoft.com", "name": "Microsoft"}
USER = {"id": b"\x01user-0001", "name": "alice@contoso.com", "displayName": "Alice"}
CDH = hashlib.sha256(b'{"type":"webauthn.create"}').digest()


def open_card():
    """Connects to the card in the vpcd reader; other connections are closed at once
    (a connection left to the garbage collector resets the card under the next one)."""
    keep = None
    for dev in CtapPcscDevice.list_devices():
        if keep is None and "00 00" in str(dev):
            keep = dev
        else:
            dev.close()
    return keep


def wait_for_card(present, timeout=15.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        dev = open_card()
        if dev is not None:
            dev.close()
        if (dev is not None) == present:
            return
        time.sleep(0.3)
    raise AssertionError(f"card {'not ' if present else 'still '}present after {timeout}s")


@pytest.fixture(params=["extended", "short", "quirky"])
def ctap(request):
    if not os.path.exists(SOFTKEY):
        pytest.fail(f"{SOFTKEY} missing: cargo build -p fido-transport --example softkey")
    proc = subprocess.Popen(
        [SOFTKEY, "--vpcd", VPCD, "--reader-mode", request.param],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    dev = None
    try:
        wait_for_card(True)
        time.sleep(0.5)
        dev = open_card()
        yield Ctap2(dev)
    finally:
        if dev is not None:
            dev.close()
        proc.terminate()
        proc.wait(timeout=10)
        # pcscd must see the card leave before the next one connects (rig pitfall 4).
        wait_for_card(False)
        time.sleep(1.5)


def test_issuance_sequence_and_sign_in(ctap):
    info = ctap.info
    assert "FIDO_2_1" in info.versions
    assert info.options.get("clientPin") is False

    # Fresh key: set a PIN with protocol 2, change it with protocol 1.
    ClientPin(ctap, PinProtocolV2()).set_pin("271828")
    assert ClientPin(ctap, PinProtocolV2()).get_pin_retries()[0] == 8
    ClientPin(ctap, PinProtocolV1()).change_pin("271828", "314159")
    with pytest.raises(CtapError) as e:
        ClientPin(ctap, PinProtocolV2()).get_pin_token("271828")
    assert e.value.code == CtapError.ERR.PIN_INVALID
    assert ClientPin(ctap, PinProtocolV2()).get_pin_retries()[0] == 7

    # setMinPINLength with an RP id, then forceChangePin semantics stay ours to test in Rust.
    cp = ClientPin(ctap, PinProtocolV2())
    token = cp.get_pin_token("314159", ClientPin.PERMISSION.AUTHENTICATOR_CFG)
    Config(ctap, cp.protocol, token).set_min_pin_length(min_pin_length=6, rp_ids=[RP["id"]])
    assert ctap.get_info().min_pin_length == 6

    # Discoverable, user-verified credential; packed attestation verified by python-fido2.
    token = cp.get_pin_token("314159", ClientPin.PERMISSION.MAKE_CREDENTIAL, RP["id"])
    att = ctap.make_credential(
        CDH, RP, USER, [{"type": "public-key", "alg": -7}],
        options={"rk": True},
        pin_uv_param=cp.protocol.authenticate(token, CDH),
        pin_uv_protocol=cp.protocol.VERSION,
    )
    assert att.auth_data.is_user_verified()
    obj = AttestationObject.create(att.fmt, att.auth_data, att.att_stmt)
    PackedAttestation().verify(obj.att_stmt, obj.auth_data, CDH)

    # Sign-in: the assertion verifies with the credential public key.
    cdh2 = hashlib.sha256(b'{"type":"webauthn.get"}').digest()
    token = cp.get_pin_token("314159", ClientPin.PERMISSION.GET_ASSERTION, RP["id"])
    assertion = ctap.get_assertion(
        RP["id"], cdh2,
        pin_uv_param=cp.protocol.authenticate(token, cdh2),
        pin_uv_protocol=cp.protocol.VERSION,
    )
    att.auth_data.credential_data.public_key.verify(assertion.auth_data + cdh2, assertion.signature)
    assert assertion.user["id"] == USER["id"]

    # Credential management: enumerate and delete.
    token = cp.get_pin_token("314159", ClientPin.PERMISSION.CREDENTIAL_MGMT)
    cm = CredentialManagement(ctap, cp.protocol, token)
    assert cm.get_metadata()[CredentialManagement.RESULT.EXISTING_CRED_COUNT] == 1
    rps = cm.enumerate_rps()
    assert [r[CredentialManagement.RESULT.RP]["id"] for r in rps] == [RP["id"]]
    creds = cm.enumerate_creds(rps[0][CredentialManagement.RESULT.RP_ID_HASH])
    cm.delete_cred(creds[0][CredentialManagement.RESULT.CREDENTIAL_ID])
    assert cm.get_metadata()[CredentialManagement.RESULT.EXISTING_CRED_COUNT] == 0


def test_reset_within_power_up_window(ctap):
    ClientPin(ctap, PinProtocolV2()).set_pin("123456")
    assert ctap.get_info().options.get("clientPin") is True
    ctap.reset()
    assert ctap.get_info().options.get("clientPin") is False
