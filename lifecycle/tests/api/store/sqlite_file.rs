//! The SQLite file itself: created private, never through a symlink, checked at open
//! (damage is reported) and before every transaction (a deleted or replaced file stops
//! the process instead of writing into nothing).

use lifecycle::store::{NewKey, SqliteStore, Store, StoreError};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("ks-sqlite-file-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn key(i: usize) -> NewKey {
    NewKey {
        key_id: format!("key-{i:05}"),
        aaguid: [7; 16],
        serial: format!("serial-{i:05}-{}", "x".repeat(40)),
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn sqlite_file_deleted_under_an_open_store_stops_the_next_write() {
    let dir = temp("deleted");
    let path = dir.join("keysmith.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create_key(&key(1), 1).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    match store.create_key(&key(2), 2) {
        Err(StoreError::RepositoryGone { path: p, what }) => {
            assert_eq!(what, "deleted");
            assert!(p.ends_with("keysmith.db"), "{p}");
        }
        other => panic!("write after the file was deleted: {other:?}"),
    }
    assert!(matches!(
        store.get_key("key-00001"),
        Err(StoreError::RepositoryGone { .. })
    ));
    let e = lifecycle::Error::from(store.create_key(&key(3), 3).unwrap_err());
    assert_eq!(e.reason(), "repository_gone");
    assert!(e.to_string().contains("deleted"), "{e}");

    // Replaced by another database at the same path: refused as well.
    let path2 = dir.join("other.db");
    let store = SqliteStore::open(&path).unwrap();
    drop(SqliteStore::open(&path2).unwrap());
    std::fs::rename(&path2, &path).unwrap();
    match store.create_key(&key(4), 4) {
        Err(StoreError::RepositoryGone { what, .. }) => {
            assert!(what.contains("replaced"), "{what}")
        }
        other => panic!("write after the file was replaced: {other:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sqlite_damage_is_reported_at_open_and_by_the_check() {
    let dir = temp("damaged");
    let path = dir.join("keysmith.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        for i in 0..400 {
            store.create_key(&key(i), 1).unwrap();
        }
        store.integrity_check().unwrap();
        store.check_integrity().unwrap();
    } // the last connection checkpoints the WAL into the file
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 16 * 4096, "{len}");
    // 4 KiB of noise over pages in the middle of the file (not the header).
    let mut bytes = std::fs::read(&path).unwrap();
    let mut x: u32 = 0x9e37_79b9;
    for b in &mut bytes[8 * 4096..9 * 4096] {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *b = x as u8;
    }
    std::fs::write(&path, &bytes).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::Damaged { path: p, report }) => {
            assert!(p.ends_with("keysmith.db"), "{p}");
            assert!(report.starts_with("quick_check"), "{report}");
        }
        Err(other) => panic!("damaged file: {other:?}"),
        Ok(_) => panic!("a damaged file opened without a word"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sqlite_files_are_private_and_never_opened_through_a_symlink() {
    let dir = temp("private");
    std::fs::create_dir_all(dir.join("a/b")).unwrap();
    let path = dir.join("a/b/keysmith.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create_key(&key(1), 1).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let f = PathBuf::from(format!("{}{suffix}", path.display()));
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    drop(store);

    // A symlink at the database's name (to a file someone else wants written) is refused.
    let victim = dir.join("victim.db");
    drop(SqliteStore::open(&victim).unwrap());
    let link = dir.join("a/link.db");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    assert!(SqliteStore::open(&link).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
