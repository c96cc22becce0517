//! Persistence: state files, `from_state`, and redacted `Debug`.

use super::*;

#[test]
fn persistence_round_trip() {
    let dir = std::env::temp_dir().join(format!("softkey-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("state.json");
    let _ = std::fs::remove_file(&path);
    let (id, key);
    {
        let mut a = SoftAuthenticator::open_persistent(&path, SoftConfig::default()).expect("open");
        let mut h = Harness {
            auth: SoftAuthenticator::new(SoftConfig::default()).expect("placeholder"),
            clock: ManualClock::new(),
            rng: SeededRng::new(3),
        };
        std::mem::swap(&mut h.auth, &mut a);
        assert_eq!(h.set_pin(2, "1234"), None);
        let t = h
            .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), None)
            .expect("token");
        let mc = h
            .make_credential(RP, user(1, "a"), true, Some(&t))
            .expect("mc");
        (id, key) = credential_of(&mc);
        // Wrong PIN once: retries persisted.
        let _ = h.token(2, "9999", Some(Permissions::GET_ASSERTION), None);
    }
    let text = std::fs::read_to_string(&path).expect("state written");
    assert!(text.contains("\"pin_retries\": 7"), "{text}");
    assert!(
        !path.with_extension("json.tmp").exists(),
        "no temporary left"
    );
    let mut h = Harness {
        auth: SoftAuthenticator::load(&path, SoftConfig::default()).expect("load"),
        clock: ManualClock::new(),
        rng: SeededRng::new(4),
    };
    assert_eq!(h.retries(), 7);
    assert_eq!(h.info().supports_option("clientPin"), Some(true));
    let ga = h
        .get_assertion(RP, Some(vec![id.clone()]), None)
        .expect("credential survives");
    verify_assertion(&key, &ga.auth_data, &cdh(2), &ga.signature).expect("same key");
    // save/load through the state struct too.
    let copy = h.auth.state().clone();
    let again = SoftAuthenticator::from_state(
        SoftConfig::default(),
        copy.clone(),
        SeededRng::new(5),
        ManualClock::new(),
    )
    .expect("from_state");
    assert_eq!(again.state(), &copy);
    // A malformed file is a typed error.
    std::fs::write(&path, "{not json").expect("write");
    assert!(matches!(
        SoftAuthenticator::load(&path, SoftConfig::default()),
        Err(SoftError::Format { .. })
    ));
    assert!(matches!(
        SoftAuthenticator::load(dir.join("missing.json"), SoftConfig::default()),
        Err(SoftError::Io { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn state_debug_redacts_secrets() {
    let h = harness();
    let dbg = format!("{:?}", h.auth.state());
    assert!(dbg.contains("redacted"));
    let json = serde_json_state(&h.auth);
    // The master key is in the JSON (test authenticator) but not in Debug.
    assert!(json.contains("master_key"));
}

fn serde_json_state(a: &SoftAuthenticator) -> String {
    let dir = std::env::temp_dir().join(format!("softkey-dbg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let p = dir.join("s.json");
    a.save(&p).expect("save");
    let s = std::fs::read_to_string(&p).expect("read");
    let _ = std::fs::remove_dir_all(&dir);
    s
}

#[cfg(unix)]
#[test]
fn state_file_is_private_and_a_planted_symlink_is_not_followed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = std::env::temp_dir().join(format!("softkey-private-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("state.json");
    // The old fixed temporary name, planted as a symlink to a file of someone else's.
    let victim = dir.join("victim");
    std::fs::write(&victim, b"keep").expect("victim");
    std::os::unix::fs::symlink(&victim, dir.join("state.json.tmp")).expect("symlink");
    let a = SoftAuthenticator::open_persistent(&path, SoftConfig::default()).expect("open");
    a.save(&path).expect("save");
    let mode = std::fs::symlink_metadata(&path)
        .expect("state")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "the state holds private keys");
    assert_eq!(std::fs::read(&victim).expect("victim"), b"keep");
    // A symlink at the state path itself is replaced, not written through.
    std::fs::remove_file(&path).expect("rm");
    std::os::unix::fs::symlink(&victim, &path).expect("symlink");
    a.save(&path).expect("save over a symlink");
    assert!(!std::fs::symlink_metadata(&path)
        .expect("state")
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read(&victim).expect("victim"), b"keep");
    let leftovers = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_string_lossy().ends_with(".tmp") && e.file_name() != "state.json.tmp"
        })
        .count();
    assert_eq!(leftovers, 0, "no temporary left");
    let _ = std::fs::remove_dir_all(&dir);
}
