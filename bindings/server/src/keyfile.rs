//! The server's signing key: P-256, PKCS#8 PEM in a file only its owner may read; never
//! in the repository. Agents pin its public key (review G5); every node of a deployment
//! holds the same file.

use std::path::Path;

use hkdf::Hkdf;
use p256::ecdsa::SigningKey;
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::ServerError;

/// The loaded server key.
pub struct ServerKey {
    key: SigningKey,
}

impl std::fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

/// Lowercase hex in groups of four separated by spaces (how fingerprints are shown).
pub fn grouped(hex: &str) -> String {
    hex.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

impl ServerKey {
    /// Creates a new key file at `path` (refused if it exists), mode 0600.
    pub fn init(path: &Path) -> Result<ServerKey, ServerError> {
        let key = SigningKey::random(&mut rand_core::OsRng);
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| ServerError::Key(format!("encoding: {e}")))?;
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut f = opts
            .open(path)
            .map_err(|e| ServerError::Key(format!("{}: {e}", path.display())))?;
        std::io::Write::write_all(&mut f, pem.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(|e| ServerError::Key(format!("{}: {e}", path.display())))?;
        Ok(ServerKey { key })
    }

    /// Loads the key file, refusing one that group or others may read.
    pub fn load(path: &Path) -> Result<ServerKey, ServerError> {
        let fail = |e: String| ServerError::Key(format!("{}: {e}", path.display()));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(path)
                .map_err(|e| fail(e.to_string()))?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(fail(format!(
                    "mode {:o}: group or others may access it (chmod 600)",
                    mode & 0o777
                )));
            }
        }
        let pem = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?);
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| fail(format!("not a P-256 PKCS#8 PEM key: {e}")))?;
        Ok(ServerKey { key })
    }

    /// The signing key (for the coordinator's COSE signatures).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// The same key as the split protocol's signing key (the coordinator signs with it).
    pub fn wire_key(&self) -> Result<keysmith_wire::SigningKey, ServerError> {
        let scalar = zeroize::Zeroizing::new(<[u8; 32]>::from(self.key.to_bytes()));
        keysmith_wire::SigningKey::from_scalar(&scalar)
            .map_err(|e| ServerError::Config(format!("server key: {e}")))
    }

    /// The public key, SEC1 uncompressed (65 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        self.key
            .verifying_key()
            .to_encoded_point(false)
            .as_bytes()
            .to_vec()
    }

    /// Lowercase hex SHA-256 of [`ServerKey::public_key`]: what agents pin.
    pub fn fingerprint(&self) -> String {
        hex::encode(Sha256::digest(self.public_key()))
    }

    /// The key deriving enrolment codes from their ids: HKDF-SHA256 of the private
    /// scalar, info `keysmith/v1 enrolment code`. Every node derives the same codes; the
    /// repository alone cannot.
    pub(crate) fn enrolment_key(&self) -> Zeroizing<[u8; 32]> {
        let secret = Zeroizing::new(self.key.to_bytes());
        let hk = Hkdf::<Sha256>::new(None, secret.as_slice());
        let mut out = Zeroizing::new([0u8; 32]);
        // 32 bytes is far below HKDF-SHA256's limit: expand cannot fail here.
        let _ = hk.expand(b"keysmith/v1 enrolment code", out.as_mut_slice());
        out
    }
}
