//! `keysmith demo` (cargo feature `demo`): the whole lifecycle against the in-process
//! Entra emulator and a software key, on the lifecycle engine directly (it injects IdP
//! faults and power-cycles the software key, which the facade does not expose).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use entra_graph::auth::{Credential, Secret};
use entra_graph::emulator::{Emulator, EmulatorConfig, Fault, FaultRule};
use entra_graph::{ApiVersion, GraphClient};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{Engine, EngineError, IdpEffectError, IssueRequest};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{KeyQuery, PinKey, SqliteStore};
use lifecycle::template::{KeyTransport, TemplateSet};
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

use crate::demo_self;

/// The demo's credential template: Graph beta, a one-hour challenge, reset before issuance,
/// always-UV, a minimum PIN length readable by Entra, forced IdP deletion on revoke.
pub(crate) const DEMO_TEMPLATE: &str = r#"
[passkey.entra]
idp = { connection = "contoso-entra", kind = "entra", graph_api_version = "beta" }
display_name = "{displayName} key {serial}"
truncate_display_name = true
rp_id = "login.microsoft.com"
challenge_timeout_minutes = 60

[credential]
name = "demo-standard"
passkey_templates = ["entra"]
user_assignment = { directory = "contoso-entra" }

[credential.fido2]
reset_before_issuance = true
always_uv = true
min_pin_length = 8
min_pin_length_rp_ids = ["login.microsoft.com"]

[credential.lifecycle]
force_idp_deletion_on_revoke = true
"#;

const DEMO_USER: &str = "kim@contoso.onmicrosoft.com";
/// The demo holder's PIN (a demo value, shown on purpose).
const DEMO_HOLDER_PIN: &str = "demo-pin-2468";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .unwrap_or(0)
}

fn hex(bytes: &[u8]) -> String {
    base16ct::lower::encode_string(bytes)
}

/// Runs the demo; exit 0 when every step behaved as expected.
pub(crate) fn demo(db: Option<PathBuf>) -> ExitCode {
    match run_demo(db) {
        Ok(()) => {
            println!("\ndemo finished: every step behaved as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("\nkeysmith demo failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

fn run_demo(db: Option<PathBuf>) -> Result<(), String> {
    let fail = |what: &str| {
        let what = what.to_owned();
        move |e: lifecycle::Error| format!("{what}: {e}")
    };
    step(
        0,
        "setting up: Entra emulator, software key, SQLite repository",
    );
    let emulator = Emulator::start(EmulatorConfig::default())
        .map_err(|e| format!("starting the Entra emulator: {e}"))?;
    println!(
        "    Entra emulator on {} (tenant {})",
        emulator.base_url(),
        emulator.tenant_id()
    );
    let db = match db {
        Some(p) => p,
        None => {
            // A new private (0700) directory with an unpredictable name, kept after the
            // run so its repository can be looked at.
            let dir = private_temp_dir("keysmith-demo-")?;
            dir.join("keysmith.db")
        }
    };
    let store = SqliteStore::open(&db).map_err(|e| format!("opening {}: {e}", db.display()))?;
    println!("    repository: SQLite file {}", db.display());
    let client = GraphClient::new(
        emulator.graph_config(ApiVersion::Beta),
        Credential::ClientSecret {
            client_id: emulator.client_id().to_owned(),
            secret: Secret::new(emulator.client_secret().unwrap_or_default()),
        },
    )
    .map_err(|e| format!("Graph client: {e}"))?;
    let host_key = demo_host_key(&db)?;
    let engine = Engine::builder(
        Arc::new(store),
        PinKey::from_bytes(host_key),
        "demo-station",
    )
    .idp(Arc::new(EntraIdp::new("contoso-entra", client)))
    .build()
    .map_err(|e| format!("engine: {e}"))?;
    let soft =
        SoftAuthenticator::new(SoftConfig::default()).map_err(|e| format!("software key: {e}"))?;
    // The key's serial: derived from its attestation certificate.
    let serial = hex(&Sha256::digest(soft.attestation_certificate())[..4]).to_uppercase();
    let transport = SoftTransport::new(soft);
    let mut key = Authenticator::new(transport.clone());
    println!("    software key: CTAP 2.1, serial {serial}");
    let templates =
        TemplateSet::from_toml_str(DEMO_TEMPLATE).map_err(|e| format!("demo template: {e}"))?;
    engine
        .add_template(templates.clone())
        .map_err(|e| format!("demo template: {e}"))?;
    let request = IssueRequest {
        actor: "operator:demo".into(),
        user: DEMO_USER.into(),
        serial,
        transport: KeyTransport::Software,
        can_reset_in_place: true,
    };
    let user_id = emulator_user_id(&engine, DEMO_USER)?;

    step(1, &format!("central issuance to {DEMO_USER}"));
    let now = now_ms();
    let k = engine
        .issue(&request, &templates.credential.name, &mut key, now)
        .map_err(fail("issue"))?;
    println!(
        "    key {} is {}; random transport PIN set and stored encrypted",
        k.key_id, k.state
    );
    println!(
        "    pending registrations: {}; passkeys at the IdP: {}",
        engine
            .store()
            .pending_for_key(&k.key_id)
            .map_err(|e| e.to_string())?
            .len(),
        emulator.methods(&user_id).len()
    );

    step(
        2,
        "activation by the holder (holder PIN replaces the transport PIN)",
    );
    let k = engine
        .activate(
            "self:kim",
            &k.key_id,
            DEMO_HOLDER_PIN,
            &mut key,
            now + 1_000,
        )
        .map_err(fail("activate"))?;
    println!(
        "    key is {}; passkeys at the IdP: {}",
        k.state,
        emulator.methods(&user_id).len()
    );

    step(
        3,
        "sign-in (getAssertion verified against the registered public key)",
    );
    for s in engine
        .sign_in(&k.key_id, DEMO_HOLDER_PIN, &mut key)
        .map_err(fail("sign-in"))?
    {
        println!(
            "    verified: passkey {} (method {}), signature counter {}",
            s.passkey_template, s.method_id, s.sign_count
        );
    }

    step(4, "inactivate");
    let k = engine
        .inactivate("operator:demo", &k.key_id, now + 2_000)
        .map_err(fail("inactivate"))?;
    println!(
        "    key is {}; passkeys at the IdP: {}",
        k.state,
        emulator.methods(&user_id).len()
    );

    step(
        5,
        "reissue (revoke -> retire -> unregister -> issue; the key is reset in place)",
    );
    transport.with(|a| a.power_cycle());
    let k = engine
        .reissue(&request, &k.key_id, &mut key, now + 3_000)
        .map_err(fail("reissue"))?;
    println!("    key is {}", k.state);
    let k = engine
        .activate(
            "self:kim",
            &k.key_id,
            DEMO_HOLDER_PIN,
            &mut key,
            now + 4_000,
        )
        .map_err(fail("activate after reissue"))?;
    println!(
        "    activated again: key is {}; passkeys at the IdP: {}",
        k.state,
        emulator.methods(&user_id).len()
    );
    engine
        .sign_in(&k.key_id, DEMO_HOLDER_PIN, &mut key)
        .map_err(fail("sign-in after reissue"))?;
    println!("    sign-in verified");

    step(
        6,
        "revoke with forced IdP deletion while the IdP refuses the deletion",
    );
    emulator.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
    match engine.revoke("operator:demo", &k.key_id, Some(true), now + 5_000) {
        Err(lifecycle::Error::Engine(
            e @ EngineError::IdpEffect(IdpEffectError::IdpDeletionCancelled { .. }),
        )) => {
            let still = engine.key(&k.key_id).map_err(fail("read key"))?;
            println!("    cancelled as expected: {e}");
            println!(
                "    key is still {}; passkeys at the IdP: {}",
                still.state,
                emulator.methods(&user_id).len()
            );
        }
        Err(e) => return Err(format!("forced revoke: unexpected error: {e}")),
        Ok(_) => {
            return Err("forced revoke succeeded although the IdP refused the deletion".into())
        }
    }

    step(7, "revoke again (the IdP accepts the deletion)");
    let k = engine
        .revoke("operator:demo", &k.key_id, Some(true), now + 6_000)
        .map_err(fail("revoke"))?;
    println!(
        "    key is {}; passkeys at the IdP: {}",
        k.state,
        emulator.methods(&user_id).len()
    );

    step(
        8,
        "self-service issuance (the holder authenticated with OpenID Connect)",
    );
    let self_key = demo_self::run(&engine, &emulator, now + 7_000)?;

    println!("\n== repository ==");
    let mut keys = engine
        .find_keys(&KeyQuery::ByState(k.state))
        .map_err(fail("list keys"))?;
    keys.push(engine.key(&self_key).map_err(fail("read key"))?);
    for rec in keys {
        println!(
            "key {}  state={}  user={}  template={}  version={}",
            rec.key_id,
            rec.state,
            rec.user_id.as_deref().unwrap_or("-"),
            rec.template_id.as_deref().unwrap_or("-"),
            rec.version
        );
        for p in engine
            .passkeys(&rec.key_id)
            .map_err(fail("list passkeys"))?
        {
            println!(
                "  passkey {}  credential {}  state={}  idp method={}",
                p.passkey_template,
                hex(&p.credential_id[..p.credential_id.len().min(8)]),
                p.state,
                p.idp_method_id.as_deref().unwrap_or("-")
            );
        }
        println!("  audit log:");
        for a in engine.audit_for(&rec.key_id).map_err(fail("audit"))? {
            let e = a.event;
            println!(
                "    #{:<3} {:<18} {:<12} {:<9} request-id={} {}",
                a.id,
                e.actor,
                e.action,
                e.outcome,
                e.idp_request_id.as_deref().unwrap_or("-"),
                e.detail.as_deref().unwrap_or("")
            );
        }
    }
    println!("\n== IdP (Entra emulator) ==");
    for (upn, id) in [
        (DEMO_USER, user_id),
        (
            demo_self::SELF_USER,
            emulator_user_id(&engine, demo_self::SELF_USER)?,
        ),
    ] {
        let methods = emulator.methods(&id);
        println!("passkeys of {upn}: {}", methods.len());
        for m in methods {
            println!("  {} {:?}", m.id, m.display_name);
        }
    }
    Ok(())
}

/// The demo's host key: kept next to the database (`FILE.pinkey`, 0600, hex) with a
/// session config (`FILE.toml`), so `keysmith --config FILE.toml audit verify` can check
/// the demo's audit log afterwards. A key file from an earlier run is reused.
fn demo_host_key(db: &std::path::Path) -> Result<[u8; 32], String> {
    use std::io::Write as _;
    let with_ext = |ext: &str| {
        let mut p = db.as_os_str().to_owned();
        p.push(ext);
        PathBuf::from(p)
    };
    let key_file = with_ext(".pinkey");
    let config_file = with_ext(".toml");
    let mut host_key = [0u8; 32];
    match std::fs::read_to_string(&key_file) {
        Ok(text) => {
            // Constant-time hex (base16ct): this is the repository's PIN key.
            let n = base16ct::mixed::decode(text.trim(), &mut host_key)
                .map_err(|_| format!("{}: expected 64 hex digits", key_file.display()))?
                .len();
            if n != host_key.len() {
                return Err(format!("{}: expected 64 hex digits", key_file.display()));
            }
        }
        Err(_) => {
            OsRng.fill_bytes(&mut host_key);
            // A 0600 temporary beside it, synced, moved into place without replacing
            // a file that appeared meanwhile.
            let dir = match key_file.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => std::path::Path::new("."),
            };
            let io = |e: std::io::Error| format!("writing {}: {e}", key_file.display());
            let mut f = private_temp_file(dir).map_err(io)?;
            f.write_all(base16ct::lower::encode_string(&host_key).as_bytes())
                .map_err(io)?;
            f.as_file().sync_all().map_err(io)?;
            f.persist_noclobber(&key_file).map_err(|e| io(e.error))?;
        }
    }
    let name = |p: &std::path::Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let config = format!(
        "# The demo's repository, for `keysmith --config {} audit verify` and the other\n\
         # read commands (no IdP connection: the demo's emulator is gone).\n\
         station = \"demo-station\"\npin_key_file = {:?}\n\n[repository]\nsqlite = {:?}\n",
        config_file.display(),
        name(&key_file),
        name(db),
    );
    std::fs::write(&config_file, config)
        .map_err(|e| format!("writing {}: {e}", config_file.display()))?;
    println!(
        "    host key in {}; check the audit log later with: keysmith --config {} audit verify",
        key_file.display(),
        config_file.display()
    );
    Ok(host_key)
}

/// The demo user's object id, through the engine's IdP connector.
fn emulator_user_id(engine: &Engine, upn: &str) -> Result<String, String> {
    let idp = engine
        .idp("contoso-entra")
        .map_err(|e| format!("IdP connector: {e}"))?;
    idp.user(upn)
        .map(|u| u.id)
        .map_err(|e| format!("looking up {upn}: {e}"))
}

/// A new directory under the system's temporary directory, `0700`, with an unpredictable
/// name starting with `prefix`; kept (not removed) after the run.
pub(crate) fn private_temp_dir(prefix: &str) -> Result<PathBuf, String> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    #[cfg(unix)]
    b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
    b.tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| format!("creating a temporary directory: {e}"))
}

/// A new `0600` temporary file in `dir` (removed unless persisted).
fn private_temp_file(dir: &std::path::Path) -> std::io::Result<tempfile::NamedTempFile> {
    let mut b = tempfile::Builder::new();
    b.prefix(".keysmith-demo.").suffix(".new");
    #[cfg(unix)]
    b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600));
    b.tempfile_in(dir)
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn private_temp_dirs_are_new_0700_and_kept() {
        let a = super::private_temp_dir("keysmith-demo-test-").unwrap();
        let b = super::private_temp_dir("keysmith-demo-test-").unwrap();
        assert_ne!(a, b);
        for d in [&a, &b] {
            let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", d.display());
            std::fs::remove_dir(d).unwrap();
        }
    }

    #[test]
    fn private_temp_files_are_0600_and_removed_unless_kept() {
        let dir = super::private_temp_dir("keysmith-demo-test-").unwrap();
        let f = super::private_temp_file(&dir).unwrap();
        let mode = f.as_file().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        drop(f);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }
}
