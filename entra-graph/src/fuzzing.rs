//! Entry points for fuzz targets (feature `fuzzing`): every response parser and every
//! decoder of outside bytes. Each must return without panicking for any input.

use crate::wire::{
    parse_json, BatchResponse, CreationOptions, DirectoryObject, Fido2Method, Fido2Policy,
    ODataErrorBody, Page, TokenErrorResponse, TokenResponse, User,
};

/// Feeds bytes to every Graph/token response parser and to the error-body decoder.
pub fn parse_responses(data: &[u8]) {
    let _ = parse_json::<Page<Fido2Method>>(data, "fido2Methods page");
    let _ = parse_json::<Fido2Method>(data, "fido2AuthenticationMethod");
    let _ = CreationOptions::from_json(data);
    let _ = parse_json::<User>(data, "user");
    let _ = parse_json::<Page<User>>(data, "users page");
    let _ = parse_json::<Page<DirectoryObject>>(data, "directoryObjects page");
    let _ = parse_json::<Fido2Policy>(data, "policy");
    let _ = parse_json::<ODataErrorBody>(data, "error");
    let _ = parse_json::<TokenResponse>(data, "token");
    let _ = parse_json::<TokenErrorResponse>(data, "token error");
    if let Ok(b) = parse_json::<BatchResponse>(data, "batch") {
        // Inner bodies are read as the shapes the client expects there.
        for r in &b.responses {
            if let Some(body) = &r.body {
                let _ = body.parse::<Page<Fido2Method>>("fido2Methods page");
                let _ = crate::http::api_error(r.status, None, body.as_bytes());
            }
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        // Retry-After: delay-seconds or an HTTP-date.
        let _ = crate::http::parse_retry_after(text, std::time::SystemTime::now());
    }
    let status = data.first().map_or(400, |b| 400 + u16::from(*b));
    let _ = crate::http::api_error(status, None, data);
}

/// Feeds bytes (as text) to the lenient and strict identifier decoders.
pub fn decode_ids(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = crate::ids::decode_lenient(&s, "id");
    let _ = crate::ids::decode_b64url_strict(&s, "id");
    let _ = crate::ids::same_credential(&s, "AAAA");
}

/// Feeds bytes to the authenticator-data parser and the attestation-object builder.
pub fn parse_auth_data(data: &[u8]) {
    let _ = crate::webauthn::attestation_object(&crate::webauthn::MakeCredentialResult {
        auth_data: data.to_vec(),
        fmt: "packed".into(),
        att_stmt: data.to_vec(),
    });
}

/// Feeds bytes to the emulator's registration validation and token-form checks.
#[cfg(feature = "emulator")]
pub fn emulator_inputs(data: &[u8]) {
    crate::emulator::fuzz_registration(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixture, and every truncation and single-byte flip of a few, goes through
    /// every parser without a panic (the fuzz targets' smoke run).
    #[test]
    fn parsers_survive_fixture_mutations() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let bytes = std::fs::read(&path).unwrap();
            seen += 1;
            for cut in (0..bytes.len()).step_by(7) {
                parse_responses(&bytes[..cut]);
            }
            for i in (0..bytes.len()).step_by(11) {
                let mut m = bytes.clone();
                m[i] ^= 0x20;
                parse_responses(&m);
                decode_ids(&m[i..(i + 24).min(m.len())]);
                parse_auth_data(&m);
            }
        }
        assert!(seen >= 10, "fixtures found: {seen}");
    }
}

#[cfg(all(test, feature = "emulator"))]
mod emulator_tests {
    /// Mutations of a structurally valid registration body never panic the validator.
    #[test]
    fn registration_validation_survives_mutations() {
        let body = br#"{"displayName":"k","publicKeyCredential":{"id":"AAAA","response":{"clientDataJSON":"eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIiwiY2hhbGxlbmdlIjoiWTJoaGJHeGxibWRsIiwib3JpZ2luIjoiaHR0cHM6Ly9sb2dpbi5taWNyb3NvZnQuY29tIn0","attestationObject":"o2NmbXRkbm9uZWdhdHRTdG10oGhhdXRoRGF0YUA"}}}"#;
        for i in 0..body.len() {
            let mut m = body.to_vec();
            m[i] ^= 0x01;
            super::emulator_inputs(&m);
            super::emulator_inputs(&body[..i]);
        }
    }
}

/// Feeds bytes to the OIDC verifier's sans-IO core: the first line as a JWKS, the rest
/// as a compact ID token.
pub fn oidc_token(data: &[u8]) {
    crate::oidc::fuzz_token(data);
}
