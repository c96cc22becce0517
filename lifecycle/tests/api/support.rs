//! Shared set-up of the reconcile and bulk tests: the real Entra emulator on loopback,
//! software authenticators and SQLite in a temporary directory.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use entra_graph::emulator::{Emulator, EmulatorConfig};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{Engine, IssueRequest};
use lifecycle::store::KeyRecord;
use lifecycle::template::{KeyTransport, TemplateSet};

pub const ADELE: &str = "adelev@contoso.onmicrosoft.com";
pub const ALEX: &str = "alexw@contoso.onmicrosoft.com";
pub const MEGAN: &str = "meganb@contoso.onmicrosoft.com";
pub const HOLDER_PIN: &str = "holder-pin-2468";

pub const TEMPLATE: &str = r#"
[passkey.entra]
idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName} {serial}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "test-standard"
passkey_templates = ["entra"]
user_assignment = { directory = "contoso-entra" }

[credential.fido2]
reset_before_issuance = true

[credential.lifecycle]
force_idp_deletion_on_revoke = false
"#;

pub fn template() -> TemplateSet {
    TemplateSet::from_toml_str(TEMPLATE).expect("test template parses")
}

pub use crate::common::{now_ms, temp_dir, CONNECTION, KIM, KIM_ID};

pub fn engine_for(emulator: &Emulator, db: &Path) -> Engine {
    let engine = crate::common::sqlite_engine(emulator, db, "station-a", 7);
    engine.add_template(template()).expect("template loads");
    engine
}

pub struct World {
    pub emulator: Emulator,
    pub dir: PathBuf,
    pub db: PathBuf,
    pub engine: Engine,
}

impl Drop for World {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

pub fn world(name: &str) -> World {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let dir = temp_dir(name);
    let db = dir.join("keysmith.db");
    let engine = engine_for(&emulator, &db);
    World {
        emulator,
        dir,
        db,
        engine,
    }
}

pub fn softkey() -> Authenticator<SoftTransport> {
    let soft = SoftAuthenticator::new(SoftConfig::default()).expect("softkey");
    Authenticator::new(SoftTransport::new(soft))
}

pub fn request(user: &str, serial: &str) -> IssueRequest {
    IssueRequest {
        actor: "operator:alice".into(),
        user: user.into(),
        serial: serial.into(),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
    }
}

/// Issues a key to `user` (pending registration only).
pub fn issued(engine: &Engine, user: &str, serial: &str, now: u64) -> KeyRecord {
    let mut key = softkey();
    engine.add_template(template()).expect("the template loads");
    engine
        .issue(
            &request(user, serial),
            &template().credential.name,
            &mut key,
            now,
        )
        .expect("issue")
}

/// Issues and activates a key for `user`: its passkey is registered at the IdP.
pub fn active(engine: &Engine, user: &str, serial: &str, now: u64) -> KeyRecord {
    let mut key = softkey();
    engine.add_template(template()).expect("the template loads");
    let k = engine
        .issue(
            &request(user, serial),
            &template().credential.name,
            &mut key,
            now,
        )
        .expect("issue");
    engine
        .activate("self:holder", &k.key_id, HOLDER_PIN, &mut key, now + 1)
        .expect("activate")
}

/// The audit actions recorded for a key.
pub fn actions(engine: &Engine, key_id: &str) -> Vec<(String, String)> {
    engine
        .audit_for(key_id)
        .expect("audit")
        .into_iter()
        .map(|a| (a.event.action, a.event.outcome))
        .collect()
}
