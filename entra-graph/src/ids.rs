//! Credential and method identifiers as Microsoft Graph writes them.
//!
//! Entra writes credential ids (`excludeCredentials[].id`) and fido2 method ids as
//! base64url followed by a **padding digit** (`0`, `1` or `2`: how many `=` were
//! dropped), e.g. `_jpuR-TGZtk6aQCLF3BQjA2`; real data also holds standard base64 with
//! `+ / =`; the v1.0 page documents `excludeCredentials` ids as plain base64url. The two
//! forms overlap: a 3k-byte id whose base64url ends in `1` reads as one byte shorter in
//! the padding-digit form. So our own ids are decoded strictly
//! ([`decode_b64url_strict`]), a method is matched against a credential by comparing
//! encodings ([`matches_credential`]), ids documented as plain are read plain first
//! ([`decode_foreign`]), and an exclusion list takes every reading
//! ([`decode_candidates`]). Everything we send is base64url without padding.

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

/// Decodes a **method id** leniently, in the form Entra documents for method ids first:
/// base64url with a padding digit, then base64url with or without padding, or standard
/// base64 with or without padding.
///
/// Only for identifiers Graph wrote in the padding-digit form (fido2 method ids, beta
/// `excludeCredentials`): for an ordinary base64url string the padding-digit reading can
/// be wrong (a 3k-byte id whose encoding ends in `1` loses its last byte). Never use it
/// on our own ids ([`decode_b64url_strict`]) or to compare a method with a credential
/// ([`matches_credential`]); for ids documented as plain base64url use
/// [`decode_foreign`].
pub fn decode_lenient(s: &str, field: &'static str) -> Result<Vec<u8>, IdError> {
    check_len(s, field)?;
    if let Some(bytes) = padding_digit_reading(s) {
        return Ok(bytes);
    }
    decode_plain(s).map_err(|()| IdError::NotBase64 { field })
}

/// Decodes a foreign identifier that is documented as base64url without padding (v1.0
/// `excludeCredentials[].id`): the plain reading (base64url or standard base64, with or
/// without `=`) first, and the padding-digit form only when the plain reading fails, as
/// DSInternals does since its fix (webauthn-interop PR #32).
pub fn decode_foreign(s: &str, field: &'static str) -> Result<Vec<u8>, IdError> {
    check_len(s, field)?;
    if let Ok(bytes) = decode_plain(s) {
        return Ok(bytes);
    }
    padding_digit_reading(s).ok_or(IdError::NotBase64 { field })
}

/// Every reading of an identifier: the plain one and the padding-digit one, each when it
/// is valid, plain first, without duplicates. Both readings are valid only for a string
/// whose length is a multiple of 4, that ends in `1` and whose character before that
/// ends in two zero bits; for an exclusion list, excluding both is harmless.
pub fn decode_candidates(s: &str, field: &'static str) -> Result<Vec<Vec<u8>>, IdError> {
    check_len(s, field)?;
    let mut out = Vec::with_capacity(2);
    if let Ok(bytes) = decode_plain(s) {
        out.push(bytes);
    }
    if let Some(bytes) = padding_digit_reading(s) {
        if !out.contains(&bytes) {
            out.push(bytes);
        }
    }
    if out.is_empty() {
        return Err(IdError::NotBase64 { field });
    }
    Ok(out)
}

/// True when the identifier Graph wrote (`foreign`: a method id or an exclude id) is an
/// encoding of the credential id `ours` (the bytes we made or were given): base64url with
/// or without `=`, with a padding digit, or standard base64 with or without `=`. Exact:
/// the foreign string is compared with our bytes' encodings, nothing is guessed.
pub fn matches_credential(foreign: &str, ours: &[u8]) -> bool {
    if ours.is_empty() || foreign.is_empty() {
        return false;
    }
    foreign == URL_SAFE_NO_PAD.encode(ours)
        || foreign == encode_with_padding_digit(ours)
        || foreign == URL_SAFE.encode(ours)
        || foreign == STANDARD.encode(ours)
        || foreign == STANDARD_NO_PAD.encode(ours)
}

/// The padding-digit reading of `s`, when `s` has that form.
fn padding_digit_reading(s: &str) -> Option<Vec<u8>> {
    let digit = s.chars().last()?.to_digit(10).filter(|d| *d <= 2)?;
    let rest = &s[..s.len() - 1];
    if rest.is_empty() || !(rest.len() + digit as usize).is_multiple_of(4) {
        return None;
    }
    decode_plain(rest).ok()
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

/// True when two identifiers can name the same credential: some reading of one
/// ([`decode_candidates`]) equals some reading of the other. To match a method against a
/// credential id we hold as bytes, use [`matches_credential`] (exact).
pub fn same_credential(a: &str, b: &str) -> bool {
    match (decode_candidates(a, "a"), decode_candidates(b, "b")) {
        (Ok(x), Ok(y)) => x.iter().any(|r| y.contains(r)),
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

    /// A deterministic byte stream for the property tests (xorshift64*).
    fn bytes(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed >> 12;
                *seed ^= *seed << 25;
                *seed ^= *seed >> 27;
                (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn property_every_id_length_16_to_1023_reads_back_exactly() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 16..=1023usize {
            for _ in 0..24 {
                let mut id = bytes(&mut seed, len);
                // Force the ambiguous shape now and then: plain base64url ending in "AAA1".
                if len % 3 == 0 && id[0] & 1 == 0 {
                    let n = id.len();
                    id[n - 3..].copy_from_slice(&[0, 0, 53]);
                }
                let plain = encode_b64url(&id);
                let digit = encode_with_padding_digit(&id);
                // Our own ids: strict, exact.
                assert_eq!(decode_b64url_strict(&plain, "id").unwrap(), id, "len {len}");
                // Foreign ids documented as plain: plain first.
                assert_eq!(decode_foreign(&plain, "id").unwrap(), id, "len {len}");
                assert_eq!(decode_foreign(&STANDARD.encode(&id), "id").unwrap(), id);
                // Method ids in Entra's form.
                assert_eq!(decode_lenient(&digit, "id").unwrap(), id, "len {len}");
                // Every reading is offered; the true one is among them.
                assert!(decode_candidates(&plain, "id").unwrap().contains(&id));
                assert!(decode_candidates(&digit, "id").unwrap().contains(&id));
                // Matching is exact in every encoding and never matches a neighbour.
                for enc in [
                    &plain,
                    &digit,
                    &STANDARD.encode(&id),
                    &URL_SAFE.encode(&id),
                    &STANDARD_NO_PAD.encode(&id),
                ] {
                    assert!(matches_credential(enc, &id), "len {len} {enc}");
                    // Only a string both forms can read (plain 3k bytes ending in "1")
                    // is also the padding-digit form of its own prefix.
                    let ambiguous = decode_candidates(enc, "id").unwrap().len() == 2;
                    assert!(
                        !matches_credential(enc, &id[..len - 1]) || ambiguous,
                        "len {len}"
                    );
                    let mut longer = id.clone();
                    longer.push(0);
                    assert!(!matches_credential(enc, &longer), "len {len}");
                }
            }
        }
    }

    #[test]
    fn a_48_byte_id_ending_in_1_is_misread_by_the_padding_digit_form_only() {
        // 64 characters of base64url ending in "AAA1": 48 bytes, the last three 0, 0, 53.
        let plain = format!("{}AAA1", "QUJD".repeat(15));
        let id = decode_b64url_strict(&plain, "id").unwrap();
        assert_eq!(id.len(), 48);
        // The method-id reading takes "1" for one '=' and drops a byte: this is why it
        // must never be used on our own ids (issue 13 item 3).
        assert_eq!(decode_lenient(&plain, "id").unwrap().len(), 47);
        assert_eq!(decode_foreign(&plain, "id").unwrap(), id);
        assert_eq!(decode_candidates(&plain, "id").unwrap().len(), 2);
        // Graph writes the method id of this credential as "...AAA10"; it matches.
        let method_id = encode_with_padding_digit(&id);
        assert!(method_id.ends_with("AAA10"));
        assert!(matches_credential(&method_id, &id));
        assert!(!matches_credential(&method_id, &id[..47]));
        // Our own id is never compared in the padding-digit reading: the plain string is
        // only "like" the 47-byte prefix because both forms can read it.
        assert!(matches_credential(&plain, &id));
    }
}
