"""Issue a security key to a user and let the holder activate it, from Python (the
`keysmith` module, bindings/python):

    python issue_and_activate.py CONFIG_JSON DEVICE_SPEC

CONFIG_JSON is the session configuration (the same JSON the C ABI and the Rust facade
take), DEVICE_SPEC e.g. softkey:/tmp/key.json, usb:/dev/hidraw3 or nfc:READER.
scripts/run-examples.sh runs it against the Entra emulator."""

import sys

import keysmith

PIN = "holder-pin-2468"


def main(config_json: str, device_spec: str) -> None:
    session = keysmith.Session(config_json)
    session.set_prompt(lambda prompt: print("prompt:", prompt, file=sys.stderr))
    device = keysmith.Device(device_spec)

    issued = session.issue(device, "example-standard", "kim@contoso.onmicrosoft.com")
    print("issued:", issued)
    # A dict today; a typed result (with the same fields as attributes) later.
    key_id = issued["key_id"] if isinstance(issued, dict) else issued.key_id

    active = session.activate(device, key_id, PIN)
    print("activated:", active)
    for signed in session.sign_in(device, key_id, PIN):
        print("sign-in verified:", signed)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: issue_and_activate.py CONFIG_JSON DEVICE_SPEC")
    main(sys.argv[1], sys.argv[2])
