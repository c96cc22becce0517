//! The agent's identity key: P-256, generated at first run, kept as a PKCS#8 PEM file.
//!
//! The file is created `0600` in a `0700` directory (created if missing) and opened
//! without following symbolic links. Loading refuses a key file that is a symlink, is
//! not a regular file, is not owned by the agent's user or that group or others may
//! access, and a directory that group or others may access (the idea of
//! `lifecycle/src/files.rs`, not the crate). On Windows the file's ACL is what protects
//! it (DPAPI or a TPM-backed CNG key is future work, `docs/agent.md`).
//!
//! Identity on the wire: the public key as SEC1 uncompressed bytes (65 bytes); the
//! agent id is the lowercase hex SHA-256 of them, the fingerprint the same in groups of
//! four, which the operator compares with what the admin approves.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::Path;

use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};

use crate::AgentError;

/// Largest key file read (a P-256 PKCS#8 PEM is about 240 bytes).
const MAX_KEY_BYTES: u64 = 16 * 1024;

/// The agent's key pair. `Debug` shows the agent id only.
pub struct AgentKey {
    key: SigningKey,
    public: [u8; 65],
}

impl std::fmt::Debug for AgentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentKey")
            .field("agent_id", &self.agent_id())
            .finish_non_exhaustive()
    }
}

impl AgentKey {
    /// A new random key (not stored).
    pub fn generate() -> Self {
        Self::from_signing_key(SigningKey::random(&mut OsRng))
    }

    fn from_signing_key(key: SigningKey) -> Self {
        let point = key.verifying_key().to_encoded_point(false);
        let mut public = [0u8; 65];
        public.copy_from_slice(point.as_bytes());
        AgentKey { key, public }
    }

    /// Loads the key at `path`, or creates and stores a new one when nothing is there.
    /// Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), AgentError> {
        let dir = parent(path);
        create_private_dir_all(dir)?;
        check_dir(dir)?;
        match std::fs::symlink_metadata(path) {
            Ok(_) => Ok((Self::load(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                key.store(path)?;
                Ok((key, true))
            }
            Err(e) => Err(AgentError::io(format!("{}", path.display()), e)),
        }
    }

    /// Loads an existing key file, with the checks of the module docs.
    pub fn load(path: &Path) -> Result<Self, AgentError> {
        check_dir(parent(path))?;
        let insecure = |reason: &str| AgentError::InsecureFile {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        let meta = std::fs::symlink_metadata(path)
            .map_err(|e| AgentError::io(format!("{}", path.display()), e))?;
        if meta.file_type().is_symlink() {
            return Err(insecure("is a symbolic link: refused"));
        }
        let mut f = nofollow_read(path)?;
        let meta = f
            .metadata()
            .map_err(|e| AgentError::io(format!("{}", path.display()), e))?;
        if !meta.is_file() {
            return Err(insecure("is not a regular file"));
        }
        #[cfg(unix)]
        {
            if meta.mode() & 0o077 != 0 {
                return Err(insecure(&format!(
                    "mode {:o}: group or others may access the agent key (chmod 600)",
                    meta.mode() & 0o777
                )));
            }
            if meta.uid() != crate::ui::sys::euid() {
                return Err(insecure("is owned by another user"));
            }
        }
        let mut pem = Zeroizing::new(String::new());
        (&mut f)
            .take(MAX_KEY_BYTES + 1)
            .read_to_string(&mut pem)
            .map_err(|e| AgentError::io(format!("{}", path.display()), e))?;
        if pem.len() as u64 > MAX_KEY_BYTES {
            return Err(AgentError::BadKey {
                path: path.to_owned(),
                reason: "larger than 16 KiB".into(),
            });
        }
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|e| AgentError::BadKey {
            path: path.to_owned(),
            reason: format!("not a P-256 PKCS#8 PEM private key: {e}"),
        })?;
        Ok(Self::from_signing_key(key))
    }

    /// Stores the key at `path` (which must not exist): written to a new `0600` temporary
    /// file with an unpredictable name beside it (tempfile: created exclusively, so never
    /// through a planted symlink; removed on failure), synced, then moved into place
    /// without replacing anything that appeared at `path` meanwhile, and the directory
    /// synced.
    pub fn store(&self, path: &Path) -> Result<(), AgentError> {
        let pem = self
            .key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| AgentError::BadKey {
                path: path.to_owned(),
                reason: format!("encoding: {e}"),
            })?;
        let dir = parent(path);
        let io = |e| AgentError::io(format!("writing a new key in {}", dir.display()), e);
        let mut b = tempfile::Builder::new();
        b.prefix(".agent-key.").suffix(".new");
        #[cfg(unix)]
        b.permissions(std::fs::Permissions::from_mode(0o600));
        let mut f = b.tempfile_in(dir).map_err(io)?;
        f.write_all(pem.as_bytes()).map_err(io)?;
        f.as_file().sync_all().map_err(io)?;
        f.persist_noclobber(path).map_err(|e| {
            if e.error.kind() == std::io::ErrorKind::AlreadyExists {
                AgentError::InsecureFile {
                    path: path.to_owned(),
                    reason: "appeared while the new key was written: refused".into(),
                }
            } else {
                AgentError::io(format!("renaming to {}", path.display()), e.error)
            }
        })?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }

    /// The public key, SEC1 uncompressed (65 bytes).
    pub fn public_sec1(&self) -> &[u8; 65] {
        &self.public
    }

    /// The agent id: lowercase hex SHA-256 of [`AgentKey::public_sec1`].
    pub fn agent_id(&self) -> String {
        agent_id(&self.public)
    }

    /// The agent id in groups of four hex digits, for people to compare.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.agent_id())
    }

    /// The signing key (for the wire crate's COSE_Sign1).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }
}

/// Lowercase hex SHA-256 of a public key.
pub fn agent_id(public_sec1: &[u8]) -> String {
    hex::encode(Sha256::digest(public_sec1))
}

/// An agent id in groups of four, separated by spaces.
pub fn fingerprint(agent_id: &str) -> String {
    agent_id
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn parent(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

fn create_private_dir_all(dir: &Path) -> Result<(), AgentError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    b.mode(0o700);
    b.create(dir)
        .map_err(|e| AgentError::io(format!("creating {}", dir.display()), e))
}

fn check_dir(dir: &Path) -> Result<(), AgentError> {
    let meta = std::fs::symlink_metadata(dir)
        .map_err(|e| AgentError::io(format!("{}", dir.display()), e))?;
    let insecure = |reason: String| AgentError::InsecureFile {
        path: dir.to_owned(),
        reason,
    };
    if meta.file_type().is_symlink() {
        return Err(insecure(
            "the key's directory is a symbolic link: refused".into(),
        ));
    }
    #[cfg(unix)]
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(insecure(format!(
            "mode {:o}: the key's directory must be 0700",
            meta.permissions().mode() & 0o777
        )));
    }
    Ok(())
}

fn nofollow_read(path: &Path) -> Result<File, AgentError> {
    let mut o = OpenOptions::new();
    o.read(true);
    #[cfg(unix)]
    o.custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC);
    o.open(path)
        .map_err(|e| AgentError::io(format!("{}", path.display()), e))
}

#[cfg(all(test, unix))]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ks-agent-key-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn created_once_then_loaded_with_the_same_id() {
        let d = tmpdir("create");
        let p = d.join("agent").join("agent-key.pem");
        let (k, created) = AgentKey::load_or_create(&p).unwrap();
        assert!(created);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o600);
        assert_eq!(mode(p.parent().unwrap()), 0o700);
        let (k2, created) = AgentKey::load_or_create(&p).unwrap();
        assert!(!created);
        assert_eq!(k.agent_id(), k2.agent_id());
        assert_eq!(k.agent_id().len(), 64);
        assert_eq!(k.fingerprint().len(), 64 + 15);
        assert!(!format!("{k:?}").contains("PRIVATE"));
        // Storing over an existing file is refused and leaves it and no temporary behind.
        let before = std::fs::read(&p).unwrap();
        assert!(matches!(
            AgentKey::generate().store(&p),
            Err(AgentError::InsecureFile { .. })
        ));
        assert_eq!(std::fs::read(&p).unwrap(), before);
        let names: Vec<_> = std::fs::read_dir(p.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [std::ffi::OsString::from("agent-key.pem")]);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn readable_symlinked_or_foreign_files_are_refused() {
        let d = tmpdir("refuse");
        let p = d.join("agent-key.pem");
        AgentKey::load_or_create(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        assert!(matches!(
            AgentKey::load(&p),
            Err(AgentError::InsecureFile { .. })
        ));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        let link = d.join("link.pem");
        std::os::unix::fs::symlink(&p, &link).unwrap();
        assert!(matches!(
            AgentKey::load(&link),
            Err(AgentError::InsecureFile { .. })
        ));
        // A loose directory is refused too.
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert!(matches!(
            AgentKey::load(&p),
            Err(AgentError::InsecureFile { .. })
        ));
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
        // Garbage is a bad key, not a panic.
        std::fs::write(d.join("junk.pem"), b"not a key").unwrap();
        std::fs::set_permissions(d.join("junk.pem"), std::fs::Permissions::from_mode(0o600))
            .unwrap();
        assert!(matches!(
            AgentKey::load(&d.join("junk.pem")),
            Err(AgentError::BadKey { .. })
        ));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
