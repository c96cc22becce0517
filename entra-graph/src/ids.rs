//! Credential and method identifiers as Microsoft Graph writes them.
//!
//! Entra writes credential ids (`excludeCredentials[].id`) and fido2 method ids as
//! base64url followed by a **padding digit** (`0`, `1` or `2`: how many `=` were
//! dropped), e.g. `_jpuR-TGZtk6aQCLF3BQjA2`; real data also holds standard base64 with
//! `+ / =`. We decode all of these leniently and encode everything we send strictly as
//! base64url without padding.

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;

/// Largest identifier (in characters) we accept; credential ids are at most 1023 bytes
/// in CTAP, challenges a few KB.
pub const MAX_ID_CHARS: usize = 16 * 1024;

/// Why an identifier could not be decoded.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The identifier was empty.
    #[error("{field}: empty identifier")]
    Empty {
        /// Which field held it.
        field: &'static str,
    },
    /// The identifier was longer than [`MAX_ID_CHARS`].
    #[error("{field}: identifier of {len} characters is longer than the {MAX_ID_CHARS} allowed")]
    TooLong {
        /// Which field held it.
        field: &'static str,
        /// Its length in characters.
        len: usize,
    },
    /// Not base64url, standard base64, nor base64url with a padding digit.
    #[error("{field}: not base64url, standard base64 or base64url with a padding digit")]
    NotBase64 {
        /// Which field held it.
        field: &'static str,
    },
}

/// Encodes bytes as base64url without padding (what we always send).
pub fn encode_b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Encodes a credential id the way Entra writes method ids: base64url without padding
/// followed by the number of `=` that were dropped.
pub fn encode_with_padding_digit(bytes: &[u8]) -> String {
    let mut s = URL_SAFE_NO_PAD.encode(bytes);
    let pad = (4 - s.len() % 4) % 4;
    // `pad` is 0, 2 or 1 here: base64 never needs 3 padding characters.
    s.push(char::from(b'0' + pad as u8));
    s
}

/// Decodes strict base64url without padding (what WebAuthn puts in clientDataJSON).
pub fn decode_b64url_strict(s: &str, field: &'static str) -> Result<Vec<u8>, IdError> {
    check_len(s, field)?;
    URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| IdError::NotBase64 { field })
}

/// Longest base64 payload field accepted by [`decode_base64`] (attestation objects with
/// certificate chains, clientDataJSON), in characters.
pub const MAX_BLOB_CHARS: usize = 256 * 1024;

/// Decodes a WebAuthn payload field (`clientDataJSON`, `attestationObject`, a credential
/// id in a registration body): base64url or standard base64, with or without `=`
/// padding, but **never** the padding-digit form — that form is only how Graph writes
/// ids, and reading it here would take a trailing `0`/`1`/`2` of ordinary base64url for
/// a padding count and drop the last byte.
pub fn decode_base64(s: &str, field: &'static str) -> Result<Vec<u8>, IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { field });
    }
    if s.len() > MAX_BLOB_CHARS {
        return Err(IdError::TooLong {
            field,
            len: s.len(),
        });
    }
    decode_plain(s).map_err(|()| IdError::NotBase64 { field })
}

/// Decodes an identifier leniently: base64url with a padding digit, base64url with or
/// without padding, or standard base64 with or without padding.
///
/// The padding-digit form is tried first when the last character is a digit that makes
/// the rest a whole number of base64 quanta, because that is how Entra writes ids.
pub fn decode_lenient(s: &str, field: &'static str) -> Result<Vec<u8>, IdError> {
    check_len(s, field)?;
    if let Some(last) = s.chars().last() {
        if let Some(digit) = last.to_digit(10).filter(|d| *d <= 2) {
            let rest = &s[..s.len() - 1];
            if !rest.is_empty() && (rest.len() + digit as usize).is_multiple_of(4) {
                if let Ok(bytes) = decode_plain(rest) {
                    return Ok(bytes);
                }
            }
        }
    }
    decode_plain(s).map_err(|()| IdError::NotBase64 { field })
}

fn decode_plain(s: &str) -> Result<Vec<u8>, ()> {
    let has_pad = s.ends_with('=');
    let standard = s.contains('+') || s.contains('/');
    let url = s.contains('-') || s.contains('_');
    if standard && url {
        return Err(());
    }
    let result = match (standard, has_pad) {
        (true, true) => STANDARD.decode(s),
        (true, false) => STANDARD_NO_PAD.decode(s),
        (false, true) => URL_SAFE.decode(s),
        (false, false) => URL_SAFE_NO_PAD.decode(s),
    };
    result.map_err(|_| ())
}

fn check_len(s: &str, field: &'static str) -> Result<(), IdError> {
    if s.is_empty() {
        return Err(IdError::Empty { field });
    }
    if s.len() > MAX_ID_CHARS {
        return Err(IdError::TooLong {
            field,
            len: s.len(),
        });
    }
    Ok(())
}

/// True when two identifiers name the same credential, whatever their encodings.
pub fn same_credential(a: &str, b: &str) -> bool {
    match (decode_lenient(a, "a"), decode_lenient(b, "b")) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_digit_form_round_trips() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len as u8).map(|b| b.wrapping_mul(37)).collect();
            if bytes.is_empty() {
                continue;
            }
            let enc = encode_with_padding_digit(&bytes);
            assert_eq!(decode_lenient(&enc, "id").unwrap(), bytes, "len {len}");
            assert_eq!(
                decode_lenient(&encode_b64url(&bytes), "id").unwrap(),
                bytes,
                "len {len}"
            );
            assert_eq!(
                decode_lenient(&STANDARD.encode(&bytes), "id").unwrap(),
                bytes,
                "len {len}"
            );
        }
    }

    #[test]
    fn documented_method_id_decodes_to_16_bytes() {
        let bytes = decode_lenient("_jpuR-TGZtk6aQCLF3BQjA2", "id").unwrap();
        assert_eq!(bytes.len(), 16);
        assert_eq!(encode_with_padding_digit(&bytes), "_jpuR-TGZtk6aQCLF3BQjA2");
    }

    #[test]
    fn standard_base64_with_plus_slash_and_padding() {
        assert_eq!(
            decode_lenient("+/+/", "id").unwrap(),
            vec![0xfb, 0xff, 0xbf]
        );
        assert_eq!(decode_lenient("/w==", "id").unwrap(), vec![0xff]);
    }

    #[test]
    fn rejects_garbage_naming_the_field() {
        assert_eq!(
            decode_lenient("a*b", "excludeCredentials.id"),
            Err(IdError::NotBase64 {
                field: "excludeCredentials.id"
            })
        );
        assert_eq!(decode_lenient("", "x"), Err(IdError::Empty { field: "x" }));
        assert!(matches!(
            decode_lenient(&"A".repeat(MAX_ID_CHARS + 1), "x"),
            Err(IdError::TooLong { .. })
        ));
        assert!(decode_lenient("ab-+", "x").is_err());
    }

    #[test]
    fn strict_rejects_padding_and_standard_alphabet() {
        assert!(decode_b64url_strict("/w==", "c").is_err());
        assert!(decode_b64url_strict("_w", "c").is_ok());
    }

    #[test]
    fn same_credential_across_encodings() {
        let bytes = [0xfe, 0x3a, 0x6e, 0x47, 0xe4, 0xc6, 0x66];
        assert!(same_credential(
            &encode_with_padding_digit(&bytes),
            &STANDARD.encode(bytes)
        ));
        assert!(!same_credential(
            &encode_b64url(&bytes),
            &encode_b64url(&bytes[1..])
        ));
    }

    #[test]
    fn payload_fields_never_read_a_padding_digit() {
        // "AAA1" is the base64url of [0, 0, 53]; read as an id it is "AAA" + one '='.
        assert_eq!(decode_base64("AAA1", "f").unwrap(), vec![0, 0, 53]);
        assert_eq!(decode_lenient("AAA1", "f").unwrap(), vec![0, 0]);
        assert_eq!(decode_base64("AAA=", "f").unwrap(), vec![0, 0]);
        assert_eq!(decode_base64("+/8", "f").unwrap(), vec![0xfb, 0xff]);
        assert!(matches!(decode_base64("", "f"), Err(IdError::Empty { .. })));
        assert!(matches!(
            decode_base64("a-+b", "f"),
            Err(IdError::NotBase64 { .. })
        ));
    }
}
