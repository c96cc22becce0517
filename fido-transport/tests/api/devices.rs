//! Real-device quirks (issue 12) taught to the software key: CTAP 2.2/2.3 getInfo
//! fields and the persistent token, long exclude lists, reset at the station.

use fido_transport::client::Authenticator;
use fido_transport::softkey::{
    ManualClock, SeededRng, SoftAuthenticator, SoftConfig, SoftTransport,
};

mod info;
mod lists;
mod pin_policy;
mod reset;

const PIN: &str = "4821";
const RP: &str = "login.microsoft.com";

fn rp() -> fido_core::commands::RpEntity {
    fido_core::commands::RpEntity {
        id: RP.into(),
        name: Some("Microsoft".into()),
    }
}

fn user(id: u8) -> fido_core::commands::UserEntity {
    fido_core::commands::UserEntity {
        id: vec![id; 16],
        name: Some(format!("user{id}@contoso.com")),
        display_name: None,
    }
}

/// A client over the in-process transport to a fresh software key, plus the clock that
/// drives the key's reset window.
fn soft_key(config: SoftConfig) -> (Authenticator<SoftTransport>, SoftTransport, ManualClock) {
    let clock = ManualClock::new();
    let soft = SoftAuthenticator::with_rng_and_clock(config, SeededRng::new(11), clock.clone())
        .expect("software key");
    let transport = SoftTransport::new(soft);
    (Authenticator::new(transport.clone()), transport, clock)
}

/// B14: a U2F-only key (no CBOR capability in its CTAPHID_INIT answer) is named as such
/// before any CTAP2 message is sent.
#[test]
fn a_u2f_only_key_is_named_as_such() {
    use fido_core::ctaphid::{Capabilities, DeviceConfig};
    use fido_transport::hid::{CtapHidTransport, InProcessHid};
    let soft = SoftAuthenticator::with_rng_and_clock(
        SoftConfig::default(),
        SeededRng::new(1),
        ManualClock::new(),
    )
    .unwrap();
    let pipe = InProcessHid::with_config(
        soft,
        DeviceConfig {
            capabilities: Capabilities::WINK,
            ..DeviceConfig::default()
        },
    );
    let mut key = Authenticator::new(CtapHidTransport::new(pipe).unwrap());
    let e = key.info().unwrap_err();
    assert!(
        matches!(&e, fido_transport::Error::Unsupported(m) if m.contains("U2F-only")),
        "{e}"
    );
}
