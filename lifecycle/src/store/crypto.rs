//! Sealing transport PINs: AES-256-GCM under a host-provided key; authenticating rows
//! and the audit chain: HMAC-SHA256 under keys derived from it ([`rowmac`]).

pub(crate) mod rowmac;

use super::{Result, StoreError};
use aes_gcm::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use core::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Format byte of a sealed PIN (lets the format evolve).
const FORMAT_V1: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// Longest PIN accepted (CTAP allows 63 UTF-8 bytes).
const MAX_PIN_BYTES: usize = 63;
/// Domain separation for the associated data.
const AAD_LABEL: &[u8] = b"keysmith/transport-pin/v1/";

/// The host's 32-byte key sealing transport PINs. Zeroized on drop; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct PinKey([u8; 32]);

impl PinKey {
    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PinKey(bytes)
    }

    /// Wraps a key from a slice, which must be exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| StoreError::Invalid {
            field: "PinKey",
            reason: format!("expected 32 bytes, got {}", bytes.len()),
        })?;
        Ok(PinKey(arr))
    }

    /// The key bytes, for deriving the row-authentication keys.
    pub(crate) fn expose_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Reads a key file: 32 raw bytes, or 64 hex digits (surrounding whitespace
    /// ignored). A file group or others may access is refused with
    /// [`StoreError::InsecureFile`] (see [`crate::files::read_secret_file`]); any other
    /// content is [`StoreError::Invalid`] naming the file.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let bytes = crate::files::read_secret_file(path, "pin_key_file")?;
        if bytes.len() == 32 {
            return Self::from_slice(&bytes);
        }
        let invalid = || StoreError::Invalid {
            field: "pin_key_file",
            reason: format!("{}: expected 32 raw bytes or 64 hex digits", path.display()),
        };
        let text = core::str::from_utf8(&bytes).map_err(|_| invalid())?.trim();
        if text.len() != 64 || !text.is_ascii() {
            return Err(invalid());
        }
        // base16ct: constant-time, because this is the host key.
        let mut key = Zeroizing::new([0u8; 32]);
        base16ct::mixed::decode(text, &mut key[..]).map_err(|_| invalid())?;
        Ok(PinKey(*key))
    }
}

impl fmt::Debug for PinKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PinKey(<redacted>)")
    }
}

/// A transport PIN in clear, held only in memory. Zeroized on drop; never printed.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub struct TransportPin(String);

impl TransportPin {
    /// Wraps a PIN (1 to 63 UTF-8 bytes).
    pub fn new(pin: impl Into<String>) -> Result<Self> {
        let pin = TransportPin(pin.into());
        let len = pin.0.len();
        if len == 0 || len > MAX_PIN_BYTES {
            return Err(StoreError::Invalid {
                field: "transport PIN",
                reason: format!("length {len} bytes, must be 1..={MAX_PIN_BYTES}"),
            });
        }
        Ok(pin)
    }

    /// The PIN text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TransportPin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TransportPin(<redacted>)")
    }
}

fn aad(key_id: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_LABEL.len() + key_id.len());
    aad.extend_from_slice(AAD_LABEL);
    aad.extend_from_slice(key_id.as_bytes());
    aad
}

/// Seals a PIN for `key_id`: `format || nonce || ciphertext+tag`, fresh random nonce.
pub(crate) fn seal(host: &PinKey, key_id: &str, pin: &TransportPin) -> Result<Vec<u8>> {
    let cipher = Aes256Gcm::new((&host.0).into());
    let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
    let aad = aad(key_id);
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: pin.0.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| StoreError::Crypto {
            what: "sealing the transport PIN failed".into(),
        })?;
    let mut out = Vec::with_capacity(1 + NONCE_LEN + ct.len());
    out.push(FORMAT_V1);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Opens what [`seal`] made; wrong key, wrong key id or tampering -> `Crypto`.
pub(crate) fn open(host: &PinKey, key_id: &str, sealed: &[u8]) -> Result<TransportPin> {
    let (format, rest) = sealed.split_first().ok_or_else(|| StoreError::Corrupt {
        what: format!("transport PIN of {key_id}: empty"),
    })?;
    if *format != FORMAT_V1 {
        return Err(StoreError::Corrupt {
            what: format!("transport PIN of {key_id}: unknown format {format}"),
        });
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(StoreError::Corrupt {
            what: format!(
                "transport PIN of {key_id}: {} bytes is too short",
                sealed.len()
            ),
        });
    }
    let (nonce, ct) = rest.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new((&host.0).into());
    let aad = aad(key_id);
    let clear = Zeroizing::new(
        cipher
            .decrypt(Nonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| StoreError::Crypto {
                what: format!(
                    "transport PIN of {key_id} does not open: wrong host key or tampered record"
                ),
            })?,
    );
    let text = core::str::from_utf8(&clear).map_err(|_| StoreError::Corrupt {
        what: format!("transport PIN of {key_id}: not UTF-8"),
    })?;
    TransportPin::new(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(s: &str) -> TransportPin {
        TransportPin::new(s).unwrap()
    }

    #[test]
    fn seal_open_round_trip_and_fresh_nonces() {
        let k = PinKey::from_bytes([7; 32]);
        let a = seal(&k, "key-1", &pin("123456")).unwrap();
        let b = seal(&k, "key-1", &pin("123456")).unwrap();
        assert_ne!(a, b, "nonce must be fresh per value");
        assert_eq!(open(&k, "key-1", &a).unwrap().expose(), "123456");
        assert!(!a.windows(6).any(|w| w == b"123456"));
    }

    #[test]
    fn wrong_key_wrong_id_and_tamper_are_crypto_errors() {
        let k = PinKey::from_bytes([7; 32]);
        let sealed = seal(&k, "key-1", &pin("9999")).unwrap();
        let other = PinKey::from_bytes([8; 32]);
        assert!(matches!(
            open(&other, "key-1", &sealed),
            Err(StoreError::Crypto { .. })
        ));
        assert!(matches!(
            open(&k, "key-2", &sealed),
            Err(StoreError::Crypto { .. })
        ));
        let mut bad = sealed.clone();
        if let Some(last) = bad.last_mut() {
            *last ^= 1;
        }
        assert!(matches!(
            open(&k, "key-1", &bad),
            Err(StoreError::Crypto { .. })
        ));
    }

    #[test]
    fn malformed_sealed_values_are_corrupt() {
        let k = PinKey::from_bytes([7; 32]);
        for bad in [&[][..], &[2u8; 40][..], &[1u8; 20][..]] {
            assert!(matches!(
                open(&k, "k", bad),
                Err(StoreError::Corrupt { .. })
            ));
        }
    }

    #[test]
    fn debug_is_redacted_and_lengths_checked() {
        let k = PinKey::from_bytes([0xAB; 32]);
        assert_eq!(format!("{k:?}"), "PinKey(<redacted>)");
        assert_eq!(format!("{:?}", pin("4321")), "TransportPin(<redacted>)");
        assert!(TransportPin::new("").is_err());
        assert!(TransportPin::new("x".repeat(64)).is_err());
        assert!(PinKey::from_slice(&[0; 31]).is_err());
        assert!(PinKey::from_slice(&[0; 32]).is_ok());
    }

    #[cfg(unix)]
    #[test]
    fn pin_key_files_in_hex_of_either_case() {
        use std::os::unix::fs::OpenOptionsExt as _;
        let d = std::env::temp_dir().join(format!("ks-pinkey-hex-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let write = |name: &str, text: &str| {
            let p = d.join(name);
            let _ = std::fs::remove_file(&p);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&p)
                .unwrap();
            std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
            p
        };
        let key = PinKey::from_file(&write("lower", &format!("{}\n", "0a".repeat(32)))).unwrap();
        assert_eq!(key.expose_bytes(), &[0x0a; 32]);
        let upper = PinKey::from_file(&write("upper", &"AbCd".repeat(16))).unwrap();
        assert_eq!(&upper.expose_bytes()[..2], &[0xab, 0xcd]);
        for (name, bad) in [
            ("odd", "0".repeat(64)[..63].to_owned() + "g"),
            ("sign", "+a".repeat(32)),
        ] {
            assert!(
                matches!(
                    PinKey::from_file(&write(name, &bad)),
                    Err(StoreError::Invalid {
                        field: "pin_key_file",
                        ..
                    })
                ),
                "{name}"
            );
        }
        let _ = std::fs::remove_dir_all(&d);
    }
}
