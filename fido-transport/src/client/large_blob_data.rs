//! Per-credential large blobs (CTAP 2.1 §6.10.3, WebAuthn `largeBlob`): one entry of the
//! large-blob array per credential, readable only with that credential's largeBlobKey.
//!
//! An entry is the CBOR map `{1: ciphertext, 2: nonce, 3: origSize}`: the data is
//! compressed with raw DEFLATE (RFC 1951, no zlib header), then sealed with AES-256-GCM
//! under the credential's 32-byte largeBlobKey, a random 12-byte nonce and the
//! associated data `"blob" || uint64 little-endian origSize`; the 16-byte tag ends the
//! ciphertext. An entry that does not open under a key belongs to another credential.
//!
//! [`encrypt_large_blob`] and [`decrypt_large_blob`] are sans-IO; the
//! [`Authenticator::read_large_blob`], [`Authenticator::write_large_blob`] and
//! [`Authenticator::remove_large_blob`] helpers read the array, keep every other
//! credential's entry, and write it back with
//! [`Authenticator::write_large_blob_array`].
//!
//! Inflating is bounded: the output buffer is allocated once at origSize, which is
//! refused above [`MAX_LARGE_BLOB_SIZE`] (or the caller's limit), and a stream that
//! would inflate past origSize is refused, so hostile bytes cannot make it allocate more.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use fido_core::cbor::Value;
use fido_core::pin::PinUvAuthToken;
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use rand_core::{OsRng, RngCore};
use zeroize::Zeroizing;

use super::{bad_response, Authenticator};
use crate::{Error, Transport};

/// Length of a largeBlobKey (AES-256).
pub const LARGE_BLOB_KEY_LEN: usize = 32;
/// Length of an entry's AES-GCM nonce.
pub const LARGE_BLOB_NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag that ends an entry's ciphertext.
const TAG_LEN: usize = 16;
/// The most bytes one credential's blob may hold uncompressed, written or read: 64 KiB,
/// far above any key's maxSerializedLargeBlobArray for data that does not compress
/// absurdly well.
pub const MAX_LARGE_BLOB_SIZE: usize = 64 * 1024;
/// DEFLATE level used when writing (miniz's default trade-off).
const DEFLATE_LEVEL: u8 = 6;

/// Why a per-credential large blob could not be sealed or opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LargeBlobError {
    /// The largeBlobKey is not [`LARGE_BLOB_KEY_LEN`] bytes.
    #[error("a largeBlobKey is {LARGE_BLOB_KEY_LEN} bytes, not {0}")]
    KeyLength(usize),
    /// The blob (to write, or the origSize of an entry that opened under the key) is
    /// larger than the limit; nothing that large was allocated.
    #[error("the large blob is {size} bytes uncompressed; at most {limit} are allowed")]
    TooLarge {
        /// The uncompressed size asked for or claimed (origSize).
        size: u64,
        /// The limit in force.
        limit: usize,
    },
    /// The entry opened under the key (so its writer held the key), but its plaintext is
    /// not a raw DEFLATE stream of exactly origSize bytes.
    #[error(
        "the large-blob entry opened under this key but does not inflate to its origSize: {0}"
    )]
    Corrupt(&'static str),
    /// The operating system's random number generator failed (no nonce).
    #[error("the OS random number generator failed: {0}")]
    Random(String),
}

/// The associated data of an entry: `"blob" || uint64 little-endian origSize`.
fn associated_data(orig_size: u64) -> [u8; 12] {
    let mut ad = [0u8; 12];
    ad[..4].copy_from_slice(b"blob");
    ad[4..].copy_from_slice(&orig_size.to_le_bytes());
    ad
}

fn cipher(key: &[u8]) -> Result<Aes256Gcm, LargeBlobError> {
    // The cipher's expanded key is zeroized on drop (aes-gcm's `zeroize` feature).
    Aes256Gcm::new_from_slice(key).map_err(|_| LargeBlobError::KeyLength(key.len()))
}

/// Seals `data` for the credential whose largeBlobKey is `key`: the large-blob array
/// entry `{1: ciphertext, 2: nonce, 3: origSize}`, with a fresh random nonce.
pub fn encrypt_large_blob(key: &[u8], data: &[u8]) -> Result<Value, LargeBlobError> {
    let mut nonce = [0u8; LARGE_BLOB_NONCE_LEN];
    OsRng
        .try_fill_bytes(&mut nonce)
        .map_err(|e| LargeBlobError::Random(e.to_string()))?;
    encrypt_with_nonce(key, data, &nonce)
}

fn encrypt_with_nonce(
    key: &[u8],
    data: &[u8],
    nonce: &[u8; LARGE_BLOB_NONCE_LEN],
) -> Result<Value, LargeBlobError> {
    let cipher = cipher(key)?;
    if data.len() > MAX_LARGE_BLOB_SIZE {
        return Err(LargeBlobError::TooLarge {
            size: data.len() as u64,
            limit: MAX_LARGE_BLOB_SIZE,
        });
    }
    let orig_size = data.len() as u64;
    let compressed = Zeroizing::new(miniz_oxide::deflate::compress_to_vec(data, DEFLATE_LEVEL));
    let ad = associated_data(orig_size);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: &compressed,
                aad: &ad,
            },
        )
        // Only fails for inputs beyond GCM's 64 GiB bound, far above MAX_LARGE_BLOB_SIZE.
        .map_err(|_| LargeBlobError::TooLarge {
            size: orig_size,
            limit: MAX_LARGE_BLOB_SIZE,
        })?;
    Ok(Value::map([
        (Value::from(1u8), Value::Bytes(ciphertext)),
        (Value::from(2u8), Value::Bytes(nonce.to_vec())),
        (Value::from(3u8), Value::Unsigned(orig_size)),
    ]))
}

/// The compressed plaintext and origSize of `entry` if it opens under `key`; `None` if
/// it is not a well-formed entry or belongs to another key (GCM does not verify).
fn open_entry(cipher: &Aes256Gcm, entry: &Value) -> Option<(Zeroizing<Vec<u8>>, u64)> {
    let map = entry.as_map("largeBlob entry").ok()?;
    let ciphertext = map.get_int(1)?.as_bytes("ciphertext").ok()?;
    let nonce = map.get_int(2)?.as_bytes("nonce").ok()?;
    let orig_size = map.get_int(3)?.as_u64("origSize").ok()?;
    if nonce.len() != LARGE_BLOB_NONCE_LEN || ciphertext.len() < TAG_LEN {
        return None;
    }
    let ad = associated_data(orig_size);
    let plain = cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: &ad,
            },
        )
        .ok()?;
    Some((Zeroizing::new(plain), orig_size))
}

/// Inflates a raw DEFLATE stream that must yield exactly `orig_size` bytes, into one
/// buffer of `orig_size` bytes (never grown).
fn inflate_exact(
    compressed: &[u8],
    orig_size: u64,
    limit: usize,
) -> Result<Vec<u8>, LargeBlobError> {
    let size = usize::try_from(orig_size)
        .ok()
        .filter(|&s| s <= limit)
        .ok_or(LargeBlobError::TooLarge {
            size: orig_size,
            limit,
        })?;
    let mut out = vec![0u8; size];
    let mut state = Box::<DecompressorOxide>::default();
    let (status, _read, written) = decompress(
        &mut state,
        compressed,
        &mut out,
        0,
        inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF,
    );
    match status {
        TINFLStatus::Done if written == size => Ok(out),
        TINFLStatus::Done => Err(LargeBlobError::Corrupt(
            "the stream ends before origSize bytes",
        )),
        TINFLStatus::HasMoreOutput => Err(LargeBlobError::Corrupt(
            "the stream inflates past origSize (refused)",
        )),
        TINFLStatus::NeedsMoreInput | TINFLStatus::FailedCannotMakeProgress => {
            Err(LargeBlobError::Corrupt("the stream is truncated"))
        }
        _ => Err(LargeBlobError::Corrupt("not a raw DEFLATE stream")),
    }
}

/// The data of `entry` if it is this credential's (it opens under `key`), `Ok(None)` if it
/// is not (another credential's entry, a tampered one, or not an entry at all). Blobs
/// larger than [`MAX_LARGE_BLOB_SIZE`] are refused; see
/// [`decrypt_large_blob_with_limit`].
pub fn decrypt_large_blob(key: &[u8], entry: &Value) -> Result<Option<Vec<u8>>, LargeBlobError> {
    decrypt_large_blob_with_limit(key, entry, MAX_LARGE_BLOB_SIZE)
}

/// [`decrypt_large_blob`] with the most uncompressed bytes to accept (origSize above it:
/// [`LargeBlobError::TooLarge`], before anything that large is allocated).
pub fn decrypt_large_blob_with_limit(
    key: &[u8],
    entry: &Value,
    limit: usize,
) -> Result<Option<Vec<u8>>, LargeBlobError> {
    let cipher = cipher(key)?;
    match open_entry(&cipher, entry) {
        None => Ok(None),
        Some((compressed, orig_size)) => inflate_exact(&compressed, orig_size, limit).map(Some),
    }
}

fn to_error(e: LargeBlobError) -> Error {
    match e {
        LargeBlobError::Corrupt(_) => bad_response("largeBlob entry", e.to_string()),
        _ => Error::InvalidArgument(e.to_string()),
    }
}

impl<T: Transport> Authenticator<T> {
    /// The blob stored for the credential whose largeBlobKey is `large_blob_key` (from
    /// makeCredential or getAssertion with the largeBlobKey extension), or `None` if the
    /// array holds no entry for it. Needs no token.
    pub fn read_large_blob(&mut self, large_blob_key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        let cipher = cipher(large_blob_key).map_err(to_error)?;
        for entry in self.read_large_blob_array()? {
            if let Some((compressed, orig_size)) = open_entry(&cipher, &entry) {
                return inflate_exact(&compressed, orig_size, MAX_LARGE_BLOB_SIZE)
                    .map(Some)
                    .map_err(to_error);
            }
        }
        Ok(None)
    }

    /// Stores `data` as the blob of the credential whose largeBlobKey is
    /// `large_blob_key`: its entries are replaced by one new entry, every other
    /// credential's entry is kept, and the array is written back with `token`
    /// (largeBlobWrite permission), as [`Authenticator::write_large_blob_array`] does.
    pub fn write_large_blob(
        &mut self,
        token: &PinUvAuthToken,
        large_blob_key: &[u8],
        data: &[u8],
    ) -> Result<(), Error> {
        let entry = encrypt_large_blob(large_blob_key, data).map_err(to_error)?;
        let mut entries = self.others_entries(large_blob_key)?.0;
        entries.push(entry);
        self.write_large_blob_array(token, &entries)
    }

    /// Removes the blob of the credential whose largeBlobKey is `large_blob_key`,
    /// keeping every other entry. Returns false (and writes nothing) if it had none.
    pub fn remove_large_blob(
        &mut self,
        token: &PinUvAuthToken,
        large_blob_key: &[u8],
    ) -> Result<bool, Error> {
        let (entries, removed) = self.others_entries(large_blob_key)?;
        if removed {
            self.write_large_blob_array(token, &entries)?;
        }
        Ok(removed)
    }

    /// The array's entries that do not open under `key`, and whether any did.
    fn others_entries(&mut self, key: &[u8]) -> Result<(Vec<Value>, bool), Error> {
        let cipher = cipher(key).map_err(to_error)?;
        let all = self.read_large_blob_array()?;
        let before = all.len();
        let kept: Vec<Value> = all
            .into_iter()
            .filter(|e| open_entry(&cipher, e).is_none())
            .collect();
        let removed = kept.len() != before;
        Ok((kept, removed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    fn field(entry: &Value, k: u8) -> Value {
        entry
            .as_map("e")
            .unwrap()
            .get_int(i64::from(k))
            .unwrap()
            .clone()
    }

    fn with_field(entry: &Value, k: u8, v: Value) -> Value {
        let Value::Map(pairs) = entry else {
            panic!("not a map")
        };
        Value::Map(
            pairs
                .iter()
                .map(|(key, old)| {
                    if *key == Value::from(k) {
                        (key.clone(), v.clone())
                    } else {
                        (key.clone(), old.clone())
                    }
                })
                .collect(),
        )
    }

    #[test]
    fn round_trip_and_fresh_nonces() {
        for data in [&b""[..], b"x", &[0x42; 5000][..]] {
            let e = encrypt_large_blob(&KEY, data).unwrap();
            assert_eq!(field(&e, 3), Value::Unsigned(data.len() as u64));
            assert_eq!(decrypt_large_blob(&KEY, &e).unwrap().as_deref(), Some(data));
        }
        let a = encrypt_large_blob(&KEY, b"same").unwrap();
        let b = encrypt_large_blob(&KEY, b"same").unwrap();
        assert_ne!(field(&a, 2), field(&b, 2));
        // 5000 equal bytes compress: the ciphertext is far smaller than the data.
        let big = encrypt_large_blob(&KEY, &[0x42; 5000]).unwrap();
        assert!(field(&big, 1).as_bytes("c").unwrap().len() < 100);
    }

    #[test]
    fn a_wrong_key_or_any_tampering_reads_as_not_ours() {
        let e = encrypt_large_blob(&KEY, b"secret data").unwrap();
        assert_eq!(decrypt_large_blob(&[8; 32], &e), Ok(None));
        let mut ct = field(&e, 1).as_bytes("c").unwrap().to_vec();
        ct[0] ^= 1;
        assert_eq!(
            decrypt_large_blob(&KEY, &with_field(&e, 1, Value::Bytes(ct))),
            Ok(None)
        );
        let mut nonce = field(&e, 2).as_bytes("n").unwrap().to_vec();
        nonce[11] ^= 0x80;
        assert_eq!(
            decrypt_large_blob(&KEY, &with_field(&e, 2, Value::Bytes(nonce))),
            Ok(None)
        );
        assert_eq!(
            decrypt_large_blob(&KEY, &with_field(&e, 3, Value::Unsigned(12))),
            Ok(None)
        );
        // Malformed entries are skipped, not errors.
        for bad in [
            Value::from(1u8),
            Value::map([(Value::from(1u8), Value::Bytes(vec![0; 40]))]),
            with_field(&e, 2, Value::Bytes(vec![0; 8])),
            with_field(&e, 3, Value::Text("12".into())),
        ] {
            assert_eq!(decrypt_large_blob(&KEY, &bad), Ok(None));
        }
        assert_eq!(
            decrypt_large_blob(&[1; 16], &e),
            Err(LargeBlobError::KeyLength(16))
        );
        assert!(matches!(
            encrypt_large_blob(&KEY, &vec![0; MAX_LARGE_BLOB_SIZE + 1]),
            Err(LargeBlobError::TooLarge { .. })
        ));
    }

    /// Seals a hand-made compressed stream (as a hostile key holder could) under KEY.
    fn seal_raw(compressed: &[u8], orig_size: u64) -> Value {
        let nonce = [3u8; 12];
        let ct = cipher(&KEY)
            .unwrap()
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: compressed,
                    aad: &associated_data(orig_size),
                },
            )
            .unwrap();
        Value::map([
            (Value::from(1u8), Value::Bytes(ct)),
            (Value::from(2u8), Value::Bytes(nonce.to_vec())),
            (Value::from(3u8), Value::Unsigned(orig_size)),
        ])
    }

    #[test]
    fn a_deflate_bomb_is_refused_within_orig_size() {
        // 16 MiB of zeros deflate to about 16 KiB; origSize claims 10 bytes.
        let bomb = miniz_oxide::deflate::compress_to_vec(&vec![0u8; 16 << 20], 10);
        assert!(bomb.len() < 64 * 1024);
        // The output buffer is origSize (10 bytes) and is never grown: refused.
        assert!(matches!(
            decrypt_large_blob(&KEY, &seal_raw(&bomb, 10)),
            Err(LargeBlobError::Corrupt(_))
        ));
        // An origSize above the limit is refused before any buffer is allocated.
        assert_eq!(
            decrypt_large_blob(&KEY, &seal_raw(&bomb, 16 << 20)),
            Err(LargeBlobError::TooLarge {
                size: 16 << 20,
                limit: MAX_LARGE_BLOB_SIZE
            })
        );
        assert_eq!(
            decrypt_large_blob(&KEY, &seal_raw(&bomb, u64::MAX)),
            Err(LargeBlobError::TooLarge {
                size: u64::MAX,
                limit: MAX_LARGE_BLOB_SIZE
            })
        );
        assert!(matches!(
            decrypt_large_blob_with_limit(&KEY, &seal_raw(&bomb, 16 << 20), 1 << 30),
            Ok(Some(v)) if v.len() == 16 << 20
        ));
        // Short streams and garbage are corrupt, not panics.
        let short = miniz_oxide::deflate::compress_to_vec(b"abc", 6);
        assert!(matches!(
            decrypt_large_blob(&KEY, &seal_raw(&short, 4)),
            Err(LargeBlobError::Corrupt(_))
        ));
        assert!(matches!(
            decrypt_large_blob(&KEY, &seal_raw(&short[..1], 3)),
            Err(LargeBlobError::Corrupt(_))
        ));
        assert!(matches!(
            decrypt_large_blob(&KEY, &seal_raw(&[0xff; 8], 3)),
            Err(LargeBlobError::Corrupt(_))
        ));
    }

    /// An entry made independently with Python 3 (zlib and the `cryptography` package):
    /// ```text
    /// key = bytes(range(32)); nonce = bytes(range(0xa0, 0xac))
    /// data = b"keysmith large blob interop vector: " + b"abc" * 20
    /// c = zlib.compressobj(9, zlib.DEFLATED, -15); comp = c.compress(data) + c.flush()
    /// ct = AESGCM(key).encrypt(nonce, comp, b"blob" + struct.pack("<Q", len(data)))
    /// ```
    #[test]
    fn an_independently_made_entry_decrypts() {
        let key: Vec<u8> = (0..32).collect();
        let nonce: Vec<u8> = (0xa0..0xac).collect();
        let hex =
            "2d56d1018b062e7632adceff4d359596ba6516425a7b6925b1c409d657e0382f1b59f5ade76e191b\
                   449d040ea9bd8e83e5ab47eb55a870d30f2e31";
        let ct = base16ct::lower::decode_vec(hex).expect("hex");
        let mut data = b"keysmith large blob interop vector: ".to_vec();
        for _ in 0..20 {
            data.extend_from_slice(b"abc");
        }
        let entry = Value::map([
            (Value::from(1u8), Value::Bytes(ct)),
            (Value::from(2u8), Value::Bytes(nonce.clone())),
            (Value::from(3u8), Value::Unsigned(96)),
        ]);
        assert_eq!(decrypt_large_blob(&key, &entry), Ok(Some(data.clone())));
        // And ours, sealed with the same nonce, opens there too (same AD layout).
        let nonce: [u8; 12] = nonce.try_into().unwrap();
        let ours = encrypt_with_nonce(&key, &data, &nonce).unwrap();
        assert_eq!(decrypt_large_blob(&key, &ours), Ok(Some(data)));
    }
}
