#!/usr/bin/env python3
"""Regenerates fuzz/seeds/ from the recorded libfido2 traffic in
fido-core/tests/fixtures/libfido2 (BSD-2-Clause, Yubico AB) plus a few hand-made inputs."""
import glob, json, os, shutil

HERE = os.path.dirname(os.path.abspath(__file__))
FX = os.path.join(HERE, "..", "fido-core", "tests", "fixtures", "libfido2")
OUT = os.path.join(HERE, "seeds")


def hexfile(name):
    return bytes.fromhex("".join(open(os.path.join(FX, name)).read().split()))


def reassemble(name):
    """CTAPHID_CBOR payloads of a recording (init: 7-byte header, cont: 5-byte header)."""
    msgs, cur = [], None
    for line in open(os.path.join(FX, name)):
        b = bytes.fromhex(line.strip()).ljust(64, b"\0")
        if b[4] & 0x80:
            if b[4] == 0xBB:
                continue
            cur = [b[4], (b[5] << 8) | b[6], bytearray(b[7:])]
            msgs.append(cur)
        elif cur:
            cur[2] += b[5:]
    return [bytes(d[:n]) for c, n, d in msgs if c == 0x90]


def head(major, n):
    if n < 24:
        return bytes([major << 5 | n])
    for ai, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | ai]) + n.to_bytes(size, "big")


def cbor(v):
    if isinstance(v, bool):
        return b"\xf5" if v else b"\xf4"
    if isinstance(v, int):
        return head(0, v) if v >= 0 else head(1, -1 - v)
    if isinstance(v, bytes):
        return head(2, len(v)) + v
    if isinstance(v, str):
        e = v.encode()
        return head(3, len(e)) + e
    if isinstance(v, list):
        return head(4, len(v)) + b"".join(cbor(x) for x in v)
    if isinstance(v, dict):
        items = sorted(((cbor(k), cbor(x)) for k, x in v.items()), key=lambda kv: (len(kv[0]), kv[0]))
        return head(5, len(items)) + b"".join(k + x for k, x in items)
    raise TypeError(v)


def put(target, name, data):
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    open(os.path.join(d, name), "wb").write(data)


OURS = ["apdu_ops", "attestation_object", "authdata", "cbor_decode", "cbor_differential", "client_data", "cose_key",
        "ctap_request", "ctap_response", "ctaphid_ops", "pin_protocol"]
for d in OURS:  # the graph_* / emulator_* seeds are hand-written, not generated here
    shutil.rmtree(os.path.join(OUT, d), ignore_errors=True)

command_index = {"info": 3, "authkey": 4, "pintoken": 4, "retries": 4, "status": 5, "assert": 1,
                 "cred": 0, "makecred": 0, "credman": 7, "bio": 6, "largeblob": 9}
for path in sorted(glob.glob(os.path.join(FX, "*wiredata-*.hex"))):
    name = os.path.basename(path)[:-4]
    if "nfc" in name or "apdu" in name:
        put("apdu_ops", name, hexfile(name + ".hex"))
        continue
    put("ctaphid_ops", name, hexfile(name + ".hex")[:2048])
    for i, payload in enumerate(reassemble(name + ".hex")):
        put("cbor_decode", f"{name}-{i}", payload[1:]) if len(payload) > 1 else None
        put("cbor_differential", f"{name}-{i}", payload[1:]) if len(payload) > 1 else None
        key = next((v for k, v in command_index.items() if k in name.split("ctap_cbor_")[-1] or k in name.split("-")[-1]), 5)
        put("ctap_response", f"{name}-{i}", bytes([key]) + payload)

auth_data = hexfile("cred-authdata.hex")[2:]
put("authdata", "cred", auth_data)
put("authdata", "assert", hexfile("assert-authdata.hex")[2:] if hexfile("assert-authdata.hex")[0] == 0x58 else hexfile("assert-authdata.hex"))
put("authdata", "tpm-es256", hexfile("cred-authdata_tpm_es256.hex")[2:])
put("cose_key", "es256", auth_data[55 + len(hexfile("cred-id.hex")):] + hexfile("cred-sig.hex"))
att_stmt = {"alg": -7, "sig": hexfile("cred-sig.hex"), "x5c": [hexfile("cred-x509.hex")]}
put("attestation_object", "packed", cbor({"fmt": "packed", "attStmt": att_stmt, "authData": auth_data}))
put("attestation_object", "ctap", cbor({1: "packed", 2: auth_data, 3: att_stmt}))
put("attestation_object", "none", cbor({"fmt": "none", "attStmt": {}, "authData": auth_data}))
put("client_data", "create", json.dumps({"type": "webauthn.create", "challenge": "AAECAwQFBgcICQ", "origin": "https://login.microsoft.com", "crossOrigin": False}, separators=(",", ":")).encode())
put("client_data", "get", b'{"type":"webauthn.get","challenge":"3q2-7w","origin":"https://example.com","topOrigin":"https://a.example"}')
cdh = hexfile("cred-cdh.hex")
requests = {
    "get_info": b"\x04",
    "reset": b"\x07",
    "selection": b"\x0b",
    "pin_retries": b"\x06" + cbor({1: 2, 2: 1}),
    "make_credential": b"\x01" + cbor({1: cdh, 2: {"id": "localhost", "name": "localhost"},
                                       3: {"id": b"\x01\x02", "name": "alice", "displayName": "Alice"},
                                       4: [{"alg": -7, "type": "public-key"}], 7: {"rk": True},
                                       6: {"credProtect": 2, "hmac-secret": True}}),
    "get_assertion": b"\x02" + cbor({1: "localhost", 2: cdh, 3: [{"id": hexfile("cred-id.hex"), "type": "public-key"}], 5: {"up": True}}),
    "config": b"\x0d" + cbor({1: 3, 2: {1: 6, 2: ["example.com"], 3: True}, 3: 2, 4: bytes(32)}),
    "cred_mgmt": b"\x0a" + cbor({1: 1, 3: 2, 4: bytes(32)}),
    "large_blobs": b"\x0c" + cbor({1: 1024, 3: 0}),
}
for name, data in requests.items():
    put("ctap_request", name, data)
put("pin_protocol", "one", bytes(range(32)))
put("pin_protocol", "two", bytes(range(48)))
print("seeds written:", sorted(os.listdir(OUT)))
