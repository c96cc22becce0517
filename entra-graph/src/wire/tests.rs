//! Decoding the recorded and hand-written Graph bodies.

use super::*;

#[test]
fn page_with_null_value_is_empty() {
    let p: Page<User> = parse_json(br#"{"value":null}"#, "page").unwrap();
    assert!(p.value.is_empty());
    assert_eq!(p.next_link, None);
}

#[test]
fn method_requires_id() {
    let e = parse_json::<Fido2Method>(br#"{"displayName":"x"}"#, "fido2Method").unwrap_err();
    match e {
        WireError::Shape { shape, reason } => {
            assert_eq!(shape, "fido2Method");
            assert!(reason.contains("id"), "{reason}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn unknown_enum_values_are_kept_as_future_value() {
    let m: Fido2Method = parse_json(
        br#"{"id":"a","attestationLevel":"somethingNew","passkeyType":"x"}"#,
        "m",
    )
    .unwrap();
    assert_eq!(
        m.attestation_level,
        Some(AttestationLevel::UnknownFutureValue)
    );
    assert_eq!(m.passkey_type, Some(PasskeyType::UnknownFutureValue));
}

#[test]
fn creation_options_plain_and_wrapped() {
    let plain =
        br#"{"publicKey":{"challenge":"YQ","rp":{"id":"login.microsoft.com"},"user":{"id":"dQ"}}}"#;
    let wrapped = br#"{"value":{"publicKey":{"challenge":"YQ","rp":{"id":"login.microsoft.com"},"user":{"id":"dQ"}}}}"#;
    let a = CreationOptions::from_json(plain).unwrap();
    let b = CreationOptions::from_json(wrapped).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.public_key.rp.id, "login.microsoft.com");
    let err = CreationOptions::from_json(br#"{"publicKey":{"rp":{"id":"x"}}}"#).unwrap_err();
    assert!(err.to_string().contains("challenge"), "{err}");
}

#[test]
fn utc_times_parse() {
    use std::time::{Duration, UNIX_EPOCH};
    assert_eq!(
        parse_utc("2024-08-14T16:29:58Z"),
        Some(UNIX_EPOCH + Duration::from_secs(1_723_652_998))
    );
    assert_eq!(
        parse_utc("2024-08-14T16:29:58.1234567+00:00"),
        Some(UNIX_EPOCH + Duration::from_secs(1_723_652_998))
    );
    assert_eq!(
        parse_utc("2000-02-29T00:00:00"),
        Some(UNIX_EPOCH + Duration::from_secs(951_782_400))
    );
    for bad in ["", "2024-13-01T00:00:00Z", "2024-08-14", "x-y-zTa:b:c"] {
        assert_eq!(parse_utc(bad), None, "{bad}");
    }
    // Before 1970 is a time too (an expiry then is long past); it read as unknown.
    assert_eq!(
        parse_utc("1960-01-01T00:00:00Z"),
        UNIX_EPOCH.checked_sub(Duration::from_secs(315_619_200))
    );
    let mut o = CreationOptions::from_json(
        br#"{"challengeTimeoutDateTime":"2024-08-14T16:29:58Z","publicKey":{"challenge":"YQ","rp":{"id":"r"},"user":{"id":"dQ"}}}"#,
    )
    .unwrap();
    let exp = o.challenge_expiry().unwrap();
    assert!(!o.is_expired(exp - Duration::from_secs(1)));
    assert!(o.is_expired(exp));
    o.challenge_timeout_date_time = None;
    assert!(!o.is_expired(exp));
}

#[test]
fn batch_body_is_json_text_of_ours() {
    let r: BatchResponse = parse_json(
        br#"{"responses":[{"id":"1","status":200,"body":{"value":[{"id":"a"}]}},{"id":"2","status":204}]}"#,
        "$batch response",
    )
    .unwrap();
    let body: &JsonText = r.responses[0].body.as_ref().unwrap();
    let page: Page<Fido2Method> = body.parse("page").unwrap();
    assert_eq!(page.value[0].id, "a");
    assert_eq!(body.as_str(), r#"{"value":[{"id":"a"}]}"#);
    assert_eq!(r.responses[1].body, None);
    // Serialised back as a JSON value, not as a string holding JSON.
    let out = serde_json::to_string(&r.responses[0]).unwrap();
    assert!(out.contains(r#""body":{"value":[{"id":"a"}]}"#), "{out}");
    assert!(JsonText::new("{not json").is_err());
    assert!(JsonText::new("{} {}").is_err());
    assert_eq!(JsonText::from_slice(b"[1,2]").unwrap().as_bytes(), b"[1,2]");
    assert_eq!(JsonText::from_slice(b"\xff"), None);
}

#[test]
fn too_large_body_is_refused() {
    let big = vec![b' '; MAX_BODY_BYTES + 1];
    assert!(matches!(
        parse_json::<User>(&big, "user"),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn token_response_debug_redacts() {
    let t = TokenResponse {
        token_type: "Bearer".into(),
        expires_in: 3599,
        access_token: "eyJsecret".into(),
    };
    assert!(!format!("{t:?}").contains("eyJsecret"));
}

/// Issue 13 item 7: `fido2KeyRestrictions.enforcementType` is nullable in the CSDL; a
/// null (or absent) value must not fail the parse of the whole policy.
#[test]
fn null_or_absent_enforcement_type_parses() {
    for kr in [
        r#"{"isEnforced":true,"enforcementType":null,"aaGuids":["a"]}"#,
        r#"{"isEnforced":false,"aaGuids":null}"#,
    ] {
        let body = format!(
            r#"{{"id":"Fido2","state":"enabled","keyRestrictions":{kr},
               "passkeyProfiles":[{{"id":"p","keyRestrictions":{kr}}}]}}"#
        );
        let p: Fido2Policy = parse_json(body.as_bytes(), "policy").unwrap();
        assert_eq!(p.key_restrictions.unwrap().enforcement_type, None);
        assert_eq!(
            p.passkey_profiles[0]
                .key_restrictions
                .as_ref()
                .unwrap()
                .enforcement_type,
            None
        );
    }
}

#[test]
fn times_with_any_offset_parse_and_expire() {
    use std::time::{Duration, UNIX_EPOCH};
    // 2026-01-01T00:00:00+02:00 is 2025-12-31T22:00:00Z.
    let at = UNIX_EPOCH + Duration::from_secs(1_767_218_400);
    assert_eq!(parse_utc("2026-01-01T00:00:00+02:00"), Some(at));
    assert_eq!(parse_utc("2025-12-31T17:00:00-05:00"), Some(at));
    // Fractions of a second are dropped (as before: whole seconds).
    assert_eq!(parse_utc("2025-12-31T22:00:00.5z"), Some(at));
    assert_eq!(parse_utc("2025-12-31T22:00:00.000-00:00"), Some(at));
    // A challenge that expired at +02:00 midnight is expired two hours before UTC midnight
    // and afterwards; it was read as "unknown expiry, not expired".
    let o = CreationOptions::from_json(
        br#"{"challengeTimeoutDateTime":"2026-01-01T00:00:00+02:00","publicKey":{"challenge":"YQ","rp":{"id":"r"},"user":{"id":"dQ"}}}"#,
    )
    .unwrap();
    assert_eq!(o.challenge_expiry(), Some(at));
    assert!(!o.is_expired(at - Duration::from_secs(1)));
    assert!(o.is_expired(at));
    assert!(o.is_expired(UNIX_EPOCH + Duration::from_secs(1_767_225_600)));
    // Out-of-range fields and offsets are refused, not guessed.
    for bad in [
        "2026-01-01T00:00:00+24:00",
        "2026-01-01T00:00:00+2:00",
        "2026-02-30T00:00:00Z",
        "2026-01-01T24:00:00Z",
        "2026-01-01 00:00:00Z junk",
    ] {
        assert_eq!(parse_utc(bad), None, "{bad}");
    }
}
