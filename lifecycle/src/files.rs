//! Files keysmith creates or reads that hold secrets or personal data: created owner-only
//! (`0600` files in `0700` directories), opened without following a symlink, and secret
//! files refused when group or others may read them.
//!
//! Used for the SQLite repository (its `-wal`/`-shm` files take the database file's
//! mode), the diagnostics log files, the host key (`pin_key_file`) and the IdP client
//! secret file. Existing directories are left as they are: only the ones keysmith
//! creates are made `0700`.

use crate::store::StoreError;
use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use zeroize::Zeroizing;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};

/// Permission bits of a private file.
pub const FILE_MODE: u32 = 0o600;
/// Permission bits of a private directory.
pub const DIR_MODE: u32 = 0o700;
/// Largest secret file read (a host key or a client secret is far smaller).
const MAX_SECRET_BYTES: u64 = 64 * 1024;

/// Creates `dir` and any missing parents, each new one `0700`; an existing directory is
/// left as it is.
pub fn create_private_dir_all(dir: &Path) -> io::Result<()> {
    if dir.as_os_str().is_empty() || dir.is_dir() {
        return Ok(());
    }
    let mut b = DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(DIR_MODE);
    b.create(dir)
}

fn private_options() -> OpenOptions {
    // Only Unix sets a mode and flags; elsewhere `o` is returned as made.
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut o = OpenOptions::new();
    #[cfg(unix)]
    o.mode(FILE_MODE)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    o
}

/// Opens `path` for appending, creating it `0600` if missing; a symlink at `path` is
/// refused (`O_NOFOLLOW`), so nobody can redirect the writes.
pub fn open_private_append(path: &Path) -> io::Result<File> {
    private_options().create(true).append(true).open(path)
}

/// Creates `path` empty and `0600` if nothing is there (a symlink there is refused);
/// an existing file is left as it is. Returns whether it was created.
pub fn create_private_file_if_missing(path: &Path) -> io::Result<bool> {
    match private_options().write(true).create_new(true).open(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let meta = std::fs::symlink_metadata(path)?;
            if meta.file_type().is_symlink() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} is a symbolic link: refused", path.display()),
                ));
            }
            Ok(false)
        }
        Err(e) => Err(e),
    }
}

/// Reads a secret file (a host key, a client secret). Refused with
/// [`StoreError::InsecureFile`] when group or others have any permission on it (the
/// mode of the file actually opened is checked, so a symlink cannot hide it); an
/// unreadable, oversized or non-regular file is [`StoreError::Invalid`] with `what` as
/// the field.
pub fn read_secret_file(path: &Path, what: &'static str) -> Result<Zeroizing<Vec<u8>>, StoreError> {
    let invalid = |why: String| StoreError::Invalid {
        field: what,
        reason: format!("{}: {why}", path.display()),
    };
    let mut file = File::open(path).map_err(|e| invalid(e.to_string()))?;
    let meta = file.metadata().map_err(|e| invalid(e.to_string()))?;
    if !meta.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    #[cfg(unix)]
    {
        let mode = meta.mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(StoreError::InsecureFile {
                path: path.display().to_string(),
                mode,
            });
        }
    }
    if meta.len() > MAX_SECRET_BYTES {
        return Err(invalid(format!(
            "{} bytes is too large for a secret file",
            meta.len()
        )));
    }
    let mut buf = Zeroizing::new(Vec::with_capacity(meta.len() as usize));
    file.by_ref()
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| invalid(e.to_string()))?;
    Ok(buf)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("ks-files-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_files_are_0600_in_new_0700_directories_and_symlinks_are_refused() {
        let d = temp("create");
        let sub = d.join("a/b");
        create_private_dir_all(&sub).unwrap();
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&sub), 0o700);
        let f = sub.join("x.log");
        open_private_append(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
        assert!(create_private_file_if_missing(&sub.join("db")).unwrap());
        assert!(!create_private_file_if_missing(&sub.join("db")).unwrap());
        assert_eq!(mode(&sub.join("db")), 0o600);
        let target = d.join("victim");
        std::fs::write(&target, b"keep").unwrap();
        let link = sub.join("link.log");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(open_private_append(&link).is_err());
        assert!(create_private_file_if_missing(&link).is_err());
        assert_eq!(std::fs::read(&target).unwrap(), b"keep");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn secret_files_readable_by_others_are_refused_with_their_mode() {
        let d = temp("secret");
        create_private_dir_all(&d).unwrap();
        let f = d.join("host.key");
        std::fs::write(&f, b"s3cret").unwrap();
        for bad in [0o644, 0o640, 0o604, 0o660, 0o602] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(bad)).unwrap();
            match read_secret_file(&f, "pin_key_file") {
                Err(StoreError::InsecureFile { path, mode }) => {
                    assert_eq!(mode, bad);
                    assert!(path.ends_with("host.key"));
                }
                other => panic!("{bad:o}: {other:?}"),
            }
        }
        let msg = read_secret_file(&f, "pin_key_file")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("0602") && msg.contains("chmod 600"), "{msg}");
        for good in [0o600, 0o400] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(good)).unwrap();
            assert_eq!(&*read_secret_file(&f, "pin_key_file").unwrap(), b"s3cret");
        }
        // A symlink to a readable-by-all file is judged by the file it points to.
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let link = d.join("link.key");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(matches!(
            read_secret_file(&link, "pin_key_file"),
            Err(StoreError::InsecureFile { .. })
        ));
        assert!(matches!(
            read_secret_file(&d.join("missing"), "pin_key_file"),
            Err(StoreError::Invalid {
                field: "pin_key_file",
                ..
            })
        ));
        let _ = std::fs::remove_dir_all(&d);
    }
}
