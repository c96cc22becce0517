//! Set-up shared by the facade's end-to-end tests: a credential template, temporary
//! directories and the session configuration for the Entra emulator on loopback.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use entra_graph::emulator::Emulator;

pub const TEMPLATE: &str = r#"
[passkey.entra]
idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName} {serial}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "facade-standard"
passkey_templates = ["entra"]
user_assignment = { directory = "contoso-entra" }

[credential.fido2]
reset_before_issuance = true
always_uv = true
min_pin_length = 8

[credential.lifecycle]
force_idp_deletion_on_revoke = true
"#;

/// A fresh directory under the system temp dir, unique per process and call time.
pub fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!(
        "keysmith-facade-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The session's JSON configuration: SQLite in `dir`, the emulator as `contoso-entra`
/// (client secret, Graph beta), [`TEMPLATE`] loaded.
pub fn config(emulator: &Emulator, dir: &Path, station: &str) -> String {
    serde_json::json!({
        "repository": { "sqlite": dir.join("keysmith.db").to_str().expect("utf-8 path") },
        "pin_key": "07".repeat(32),
        "station": station,
        "idp": [{
            "name": "contoso-entra",
            "tenant": emulator.tenant_id(),
            "client_id": emulator.client_id(),
            "client_secret": emulator.client_secret().unwrap_or_default(),
            "graph_api_version": "beta",
            "login_base": emulator.base_url(),
            "graph_base": emulator.base_url(),
        }],
        "templates": [TEMPLATE],
    })
    .to_string()
}
