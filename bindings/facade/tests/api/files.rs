//! Secret files and the repository file through the facade: a host key or client secret
//! file others may read is refused; `check_repository` passes on a sound database and
//! reports one deleted under the session.

use keysmith_facade::{ErrorKind, Session};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ks-facade-files-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn secret_files_others_may_read_are_refused() {
    let dir = temp("secrets");
    std::fs::write(dir.join("host.key"), "11".repeat(32)).unwrap();
    std::fs::write(dir.join("client.secret"), "s3cret\n").unwrap();
    let config = dir.join("keysmith.toml");
    std::fs::write(
        &config,
        "pin_key_file = \"host.key\"\nrepository = { sqlite = \"keysmith.db\" }\n",
    )
    .unwrap();
    for mode in [0o644, 0o640, 0o604] {
        chmod(&dir.join("host.key"), mode);
        let e = Session::open_file(&config).err().unwrap();
        assert_eq!(
            (e.kind, e.reason),
            (ErrorKind::Usage, "insecure_file"),
            "{e}"
        );
        assert!(e.message.contains("pin_key_file"), "{}", e.message);
        assert!(e.message.contains("chmod 600"), "{}", e.message);
        assert!(e.message.contains(&format!("{mode:04o}")), "{}", e.message);
    }
    chmod(&dir.join("host.key"), 0o600);
    Session::open_file(&config).expect("a private key file");

    std::fs::write(
        &config,
        "pin_key_file = \"host.key\"\nrepository = { sqlite = \"keysmith.db\" }\n\
         [[idp]]\nname = \"c\"\ntenant = \"t\"\nclient_id = \"id\"\n\
         client_secret_file = \"client.secret\"\n",
    )
    .unwrap();
    chmod(&dir.join("client.secret"), 0o644);
    let e = Session::open_file(&config).err().unwrap();
    assert_eq!(e.reason, "insecure_file", "{e}");
    assert!(e.message.contains("client_secret_file"), "{}", e.message);
    assert!(!e.message.contains("s3cret"), "{}", e.message);
    chmod(&dir.join("client.secret"), 0o400);
    Session::open_file(&config).expect("a private secret file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn check_repository_passes_then_reports_a_deleted_database() {
    let dir = temp("check");
    let db = dir.join("keysmith.db");
    let config = serde_json::json!({
        "repository": { "sqlite": db.to_str().unwrap() },
        "pin_key": "11".repeat(32),
    })
    .to_string();
    let session = Session::open(&config).expect("session");
    assert!(session.check_repository().expect("sound") >= 1);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    let e = session.check_repository().err().unwrap();
    assert_eq!(
        (e.kind, e.reason),
        (ErrorKind::Repository, "repository_gone"),
        "{e}"
    );
    let e = session.list_keys(&Default::default()).err().unwrap();
    assert_eq!(e.reason, "repository_gone", "{e}");

    // In memory: nothing to check but the schema.
    let memory = serde_json::json!({
        "repository": { "sqlite": ":memory:" },
        "pin_key": "11".repeat(32),
    })
    .to_string();
    assert!(Session::open(&memory)
        .expect("in memory")
        .check_repository()
        .is_ok());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bulk_run_stops_when_its_database_is_deleted_under_it() {
    use keysmith_facade::BulkRunOptions;
    use keysmith_testkit::{session_config, softkey_spec, EmulatorWorld, STANDARD_NAME};
    use keysmith_testkit::{ADELE, ALEX, KIM};
    // The reliability campaign's case: the run reported "done" and exited 0 while every
    // row went into an unlinked file.
    let EmulatorWorld { emulator, dir } = EmulatorWorld::start("facade-db-deleted");
    let session = Session::open(&session_config(&emulator, &dir, "db-deleted")).expect("session");
    let csv = format!("user,serial\n{KIM},DEL-1\n{ADELE},DEL-2\n{ALEX},DEL-3\n");
    let job = session.bulk_create("issue", &csv).expect("job");
    let db = dir.join("keysmith.db");
    let mut rows = 0;
    let e = session
        .bulk_run(
            job.job_id,
            &BulkRunOptions {
                template: Some(STANDARD_NAME.into()),
                ..BulkRunOptions::default()
            },
            &mut |row| Ok(softkey_spec(&dir, &format!("row{}.json", row.line))),
            &mut |_| {
                rows += 1;
                if rows == 1 {
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
                    }
                }
            },
        )
        .err()
        .unwrap();
    assert_eq!(
        (e.kind, e.reason),
        (ErrorKind::Repository, "repository_gone"),
        "{e}"
    );
    assert!(e.message.contains("deleted"), "{e}");
    assert_eq!(rows, 1, "no row after the deletion was reported done");
    let _ = std::fs::remove_dir_all(&dir);
}
