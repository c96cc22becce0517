//! Issue 10 items 11 and 12 through the facade's configuration: software keys refused
//! unless `allow_software_keys`, and the MDS BLOB (`mds_blob`, `mds_root`) and extra
//! roots (`attestation_roots`) building the engine's trust store.

use entra_graph::emulator::Emulator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig};
use keysmith_facade::{Device, ErrorKind, IssueParams, Session};
use keysmith_testkit::mds::{Entry, Mds};
use keysmith_testkit::{session_config, softkey_spec, EmulatorWorld, STANDARD_NAME};

fn params() -> IssueParams {
    IssueParams {
        template: STANDARD_NAME.into(),
        user: "kim@contoso.onmicrosoft.com".into(),
        ..IssueParams::default()
    }
}

fn config_with(emulator: &Emulator, dir: &std::path::Path, extra: serde_json::Value) -> String {
    let mut cfg: serde_json::Value =
        serde_json::from_str(&session_config(emulator, dir, "trust-test")).unwrap();
    for (k, v) in extra.as_object().unwrap() {
        cfg[k] = v.clone();
    }
    cfg.to_string()
}

#[test]
fn software_keys_are_refused_unless_the_session_allows_them() {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-softkey-refused");
    let refused = config_with(
        &emulator,
        &dir,
        serde_json::json!({ "allow_software_keys": false }),
    );
    let session = Session::open(&refused).expect("session");
    let device = Device::open(&softkey_spec(&dir, "k.json")).expect("device");
    let err = session.issue(&device, &params()).unwrap_err();
    assert_eq!(err.kind, ErrorKind::Usage);
    assert_eq!(err.reason, "software_key_refused", "{err:?}");
    assert!(emulator.methods(keysmith_testkit::KIM_ID).is_empty());
    // The default is refusal too.
    let mut cfg: serde_json::Value = serde_json::from_str(&refused).unwrap();
    cfg.as_object_mut().unwrap().remove("allow_software_keys");
    let session = Session::open(&cfg.to_string()).expect("session");
    let err = session.issue(&device, &params()).unwrap_err();
    assert_eq!(err.reason, "software_key_refused");
    // Allowed: issued.
    let allowed = config_with(&emulator, &dir, serde_json::json!({}));
    let key = Session::open(&allowed)
        .unwrap()
        .issue(&device, &params())
        .expect("issued with allow_software_keys");
    assert_eq!(key.state, "issued");
}

#[test]
fn mds_blob_in_the_session_config_gates_issuance() {
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-mds");
    let mut p = emulator.policy();
    p.set_attestation_enforced(true);
    emulator.set_policy(p);
    let state = dir.join("listed.json");
    let soft = SoftAuthenticator::open_persistent(&state, SoftConfig::default()).unwrap();
    let cert = soft.attestation_certificate().to_vec();
    let aaguid = SoftConfig::default().aaguid;
    drop(soft);
    let mds = Mds::new();
    std::fs::write(
        dir.join("mds.jwt"),
        mds.blob(&[Entry::new(aaguid, vec![cert])]),
    )
    .unwrap();
    std::fs::write(dir.join("mds-root.pem"), mds.root.pem()).unwrap();
    let cfg = config_with(
        &emulator,
        &dir,
        serde_json::json!({
            "mds_blob": dir.join("mds.jwt"),
            "mds_root": dir.join("mds-root.pem"),
        }),
    );
    let session = Session::open(&cfg).expect("the BLOB verifies");
    // A key whose attestation certificate is listed for its AAGUID passes.
    let device = Device::open(&softkey_spec(&dir, "listed.json")).unwrap();
    let key = session.issue(&device, &params()).expect("issued");
    assert_eq!(key.state, "issued");
    // Another software key (same AAGUID, another attestation certificate) does not
    // chain to the listed root: the tenant enforces attestation, so it is refused.
    let other = Device::open(&softkey_spec(&dir, "other.json")).unwrap();
    let err = session
        .issue(
            &other,
            &IssueParams {
                user: keysmith_testkit::MEGAN.into(),
                ..params()
            },
        )
        .unwrap_err();
    assert_eq!(err.reason, "attestation_refused", "{err:?}");

    // A BLOB signed under another root is refused when the session opens.
    let impostor = Mds::new();
    std::fs::write(dir.join("mds-root.pem"), impostor.root.pem()).unwrap();
    let Err(err) = Session::open(&cfg) else {
        panic!("a BLOB under another root must be refused");
    };
    assert_eq!(err.reason, "mds_blob_invalid", "{err:?}");
    // mds_blob without mds_root is a usage error.
    let half = config_with(
        &emulator,
        &dir,
        serde_json::json!({ "mds_blob": dir.join("mds.jwt") }),
    );
    assert_eq!(Session::open(&half).err().unwrap().kind, ErrorKind::Usage);
}
