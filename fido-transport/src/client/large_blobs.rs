//! authenticatorLargeBlobs: the serialized large-blob array, read and written in
//! fragments of `maxMsgSize - 64` bytes.
//!
//! The serialized array is the canonical CBOR array followed by the first 16 bytes of
//! its SHA-256 (CTAP 2.1 §6.10.3). Entries are kept as CBOR values (`{1: ciphertext,
//! 2: nonce, 3: origSize}` maps); their per-credential AES-GCM encryption is in
//! `large_blob_data` ([`Authenticator::read_large_blob`], [`Authenticator::write_large_blob`]).

use fido_core::cbor::{self, Limits, Value};
use fido_core::commands::LargeBlobs;
use fido_core::pin::{Permissions, PinUvAuthToken};
use sha2::{Digest, Sha256};

use super::{bad_response, check_token, no_progress, Authenticator};
use crate::{Error, Transport};

/// Length of the truncated SHA-256 that ends a serialized large-blob array.
pub const LARGE_BLOB_HASH_LEN: usize = 16;

/// maxMsgSize when getInfo does not say (CTAP 2.1 §6.4).
const DEFAULT_MAX_MSG_SIZE: u64 = 1024;
/// Room for the command's other fields within maxMsgSize.
const FRAGMENT_OVERHEAD: u64 = 64;
/// The smallest maxSerializedLargeBlobArray CTAP allows (and the default when absent).
const MIN_SERIALIZED_ARRAY: u64 = 1024;

/// The serialized form of `entries`: canonical CBOR array || LEFT(SHA-256, 16).
pub fn serialize_large_blob_array(entries: &[Value]) -> Vec<u8> {
    let mut out = cbor::encode(&Value::Array(entries.to_vec()));
    let hash = Sha256::digest(&out);
    out.extend_from_slice(&hash[..LARGE_BLOB_HASH_LEN]);
    out
}

/// The entries of a serialized array, or `None` if the hash does not match or the
/// CBOR is not an array (the spec then says: treat the array as empty).
fn parse_serialized(bytes: &[u8]) -> Option<Vec<Value>> {
    let split = bytes.len().checked_sub(LARGE_BLOB_HASH_LEN)?;
    let (array, hash) = bytes.split_at(split);
    if Sha256::digest(array).get(..LARGE_BLOB_HASH_LEN)? != hash {
        return None;
    }
    match cbor::decode_with(array, Limits::RESPONSE).ok()? {
        Value::Array(entries) => Some(entries),
        _ => None,
    }
}

impl<T: Transport> Authenticator<T> {
    /// (maxFragmentLength, maxSerializedLargeBlobArray), or Unsupported.
    fn large_blob_limits(&mut self) -> Result<(u32, u64), Error> {
        let info = self.info()?;
        if info.supports_option("largeBlobs") != Some(true) {
            return Err(Error::Unsupported(
                "the key has no large-blob storage (getInfo option largeBlobs not true)".into(),
            ));
        }
        let msg = info.max_msg_size.unwrap_or(DEFAULT_MAX_MSG_SIZE);
        let fragment = msg.saturating_sub(FRAGMENT_OVERHEAD);
        if fragment == 0 {
            return Err(bad_response(
                "getInfo.maxMsgSize",
                format!("{msg} leaves no room for a large-blob fragment"),
            ));
        }
        let fragment = u32::try_from(fragment).unwrap_or(u32::MAX);
        let max_array = info
            .max_serialized_large_blob_array
            .unwrap_or(MIN_SERIALIZED_ARRAY);
        Ok((fragment, max_array))
    }

    /// The serialized large-blob array as stored, read fragment by fragment (bounded
    /// by maxSerializedLargeBlobArray), without any check.
    pub fn read_large_blob_bytes(&mut self) -> Result<Vec<u8>, Error> {
        let (fragment, max_array) = self.large_blob_limits()?;
        let mut out = Vec::new();
        loop {
            let offset = u32::try_from(out.len())
                .map_err(|_| bad_response("largeBlobs.config", "the array exceeds 4 GiB"))?;
            let r = self.call(&LargeBlobs::read(offset, fragment), &mut no_progress)?;
            let chunk = r
                .config
                .ok_or_else(|| bad_response("largeBlobs.config", "missing in the answer"))?;
            if chunk.len() as u64 > u64::from(fragment) {
                return Err(bad_response(
                    "largeBlobs.config",
                    format!("{} bytes answered to a {fragment}-byte read", chunk.len()),
                ));
            }
            out.extend_from_slice(&chunk);
            if out.len() as u64 > max_array {
                return Err(bad_response(
                    "largeBlobs.config",
                    format!(
                        "the stored array exceeds maxSerializedLargeBlobArray ({max_array} bytes)"
                    ),
                ));
            }
            if (chunk.len() as u64) < u64::from(fragment) {
                return Ok(out);
            }
        }
    }

    /// The entries of the large-blob array. A stored array whose hash does not verify
    /// counts as empty, as CTAP 2.1 §6.10.3 prescribes.
    pub fn read_large_blob_array(&mut self) -> Result<Vec<Value>, Error> {
        let bytes = self.read_large_blob_bytes()?;
        Ok(parse_serialized(&bytes).unwrap_or_default())
    }

    /// Replaces the large-blob array with `entries`, written in fragments, each
    /// authenticated with `token` (largeBlobWrite permission). Refused before sending if
    /// the serialized array exceeds maxSerializedLargeBlobArray.
    pub fn write_large_blob_array(
        &mut self,
        token: &PinUvAuthToken,
        entries: &[Value],
    ) -> Result<(), Error> {
        check_token(
            token,
            Permissions::LARGE_BLOB_WRITE,
            None,
            "largeBlobs write",
        )?;
        let (fragment, max_array) = self.large_blob_limits()?;
        let serialized = serialize_large_blob_array(entries);
        if serialized.len() as u64 > max_array {
            return Err(Error::InvalidArgument(format!(
                "the serialized large-blob array is {} bytes; the key stores at most {max_array} (maxSerializedLargeBlobArray)",
                serialized.len()
            )));
        }
        let total = u32::try_from(serialized.len())
            .map_err(|_| Error::InvalidArgument("large-blob array over 4 GiB".into()))?;
        let mut offset = 0u32;
        for chunk in serialized.chunks(fragment as usize) {
            let length = (offset == 0).then_some(total);
            let mut request = LargeBlobs::write(offset, chunk.to_vec(), length);
            if let Some(message) = request.pin_uv_auth_message() {
                request.pin_uv_auth_param = Some(token.authenticate(&message));
            }
            request.pin_uv_auth_protocol = Some(token.protocol().id());
            self.call(&request, &mut no_progress)?;
            // chunk.len() <= fragment <= u32::MAX, and offsets stay below total.
            offset = offset.saturating_add(chunk.len() as u32);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_array_serializes_to_the_spec_initial_value() {
        // CTAP 2.1 §6.10.2: 0x80 followed by the first 16 bytes of SHA-256(0x80).
        let s = serialize_large_blob_array(&[]);
        assert_eq!(s.len(), 17);
        assert_eq!(s[0], 0x80);
        assert_eq!(
            &s[1..],
            &[
                0x76, 0xbe, 0x8b, 0x52, 0x8d, 0x00, 0x75, 0xf7, 0xaa, 0xe9, 0x8d, 0x6f, 0xa5, 0x7a,
                0x6d, 0x3c
            ]
        );
        assert_eq!(parse_serialized(&s), Some(vec![]));
    }

    #[test]
    fn a_bad_hash_or_short_input_reads_as_none() {
        let mut s = serialize_large_blob_array(&[Value::from(1u8)]);
        assert_eq!(parse_serialized(&s), Some(vec![Value::from(1u8)]));
        let last = s.len() - 1;
        s[last] ^= 1;
        assert_eq!(parse_serialized(&s), None);
        assert_eq!(parse_serialized(&[0x80]), None);
    }
}
