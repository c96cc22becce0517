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
