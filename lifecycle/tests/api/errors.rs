//! Error detail survives the engine: a wrong PIN on the software key reaches the caller
//! as a typed device error with the CTAP status and the attempts left, not as text.

use keysmith_testkit::{softkey, EmulatorWorld, HOLDER_PIN, KIM, STANDARD_TEMPLATE};
use lifecycle::engine::IssueRequest;
use lifecycle::template::{KeyTransport, TemplateSet};
use lifecycle::{CredentialState, ErrorKind};

use crate::common::{now_ms, sqlite_engine};

#[test]
fn a_wrong_pin_is_a_device_error_with_the_retries_left() {
    let world = EmulatorWorld::start("errors-wrong-pin");
    let engine = sqlite_engine(
        &world.emulator,
        &world.dir.path().join("keysmith.db"),
        "station-a",
        7,
    );
    let templates = TemplateSet::from_toml_str(STANDARD_TEMPLATE).expect("standard template");
    let name = templates.credential.name.clone();
    engine.add_template(templates).expect("template loads");
    let mut key = softkey();
    let now = now_ms();
    let request = IssueRequest {
        actor: "operator:alice".into(),
        user: KIM.into(),
        serial: "SN-ERR-1".into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
    };
    let issued = engine.issue(&request, &name, &mut key, now).expect("issue");
    let active = engine
        .activate(
            "self:kim",
            &issued.key_id,
            HOLDER_PIN,
            &mut key,
            now + 1_000,
        )
        .expect("activate");
    assert_eq!(active.state, CredentialState::Active);

    let e = engine
        .sign_in(&active.key_id, "not-the-pin-1", &mut key)
        .expect_err("a wrong PIN is refused");
    assert_eq!(e.kind(), ErrorKind::Device, "{e}");
    assert_eq!(e.reason(), "pin_invalid", "{e}");
    assert_eq!(e.ctap_status(), Some(0x31), "{e}");
    let left = e
        .retries_left()
        .expect("the key reported the attempts left");
    assert!(
        left < 8,
        "a fresh key allows 8 attempts, one is used: {left}"
    );

    // A second wrong PIN counts down by one; the right PIN still works.
    let again = engine
        .sign_in(&active.key_id, "not-the-pin-2", &mut key)
        .expect_err("refused again");
    assert_eq!(again.retries_left(), Some(left - 1), "{again}");
    engine
        .sign_in(&active.key_id, HOLDER_PIN, &mut key)
        .expect("the holder's PIN signs in");
}
