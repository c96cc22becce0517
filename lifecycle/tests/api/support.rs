//! Shared set-up of the reconcile and bulk tests: the real Entra emulator on loopback,
//! software authenticators and SQLite in a temporary directory (from `keysmith-testkit`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use entra_graph::emulator::Emulator;
use keysmith_testkit::{EmulatorWorld, TempDir};
use lifecycle::engine::{Engine, IssueRequest};
use lifecycle::store::KeyRecord;
use lifecycle::template::{KeyTransport, TemplateSet};

pub use keysmith_testkit::{softkey, ADELE, ALEX, HOLDER_PIN, MEGAN};

/// The standard test template, `test-standard` (`tests/testkit/templates/standard.toml`).
pub use keysmith_testkit::STANDARD_TEMPLATE as TEMPLATE;

/// [`TEMPLATE`], parsed.
pub fn template() -> TemplateSet {
    TemplateSet::from_toml_str(TEMPLATE).expect("test template parses")
}

pub use crate::common::{now_ms, CONNECTION, KIM, KIM_ID};

pub fn engine_for(emulator: &Emulator, db: &Path) -> Engine {
    let engine = crate::common::sqlite_engine(emulator, db, "station-a", 7);
    engine.add_template(template()).expect("template loads");
    engine
}

pub struct World {
    pub emulator: Emulator,
    /// Removed on drop unless the test failed.
    pub dir: TempDir,
    pub db: PathBuf,
    pub engine: Engine,
}

pub fn world(name: &str) -> World {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start(name);
    let db = dir.join("keysmith.db");
    let engine = engine_for(&emulator, &db);
    World {
        emulator,
        dir,
        db,
        engine,
    }
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
