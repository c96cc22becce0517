//! Templates against a key (stage 2), display name mapping, and inputs that must never
//! panic.

use super::*;

// ---- stage 2: against the key ----

fn capable_key() -> DeviceFacts {
    DeviceFacts {
        ctap21: true,
        extensions: vec!["credProtect".into(), "minPinLength".into()],
        options: DeviceOptions {
            bio_enroll: true,
            authnr_cfg: true,
            set_min_pin_length: true,
            always_uv: true,
            always_uv_enabled: false,
            client_pin_set: false,
        },
        max_rpids_for_set_min_pin_length: Some(2),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
        min_pin_length: Some(4),
    }
}

fn device_problems(t: &TemplateSet, d: &DeviceFacts) -> Vec<Problem> {
    match t.check_device(d) {
        Ok(()) => vec![],
        Err(TemplateError::Invalid(p)) => p,
        Err(other) => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn capable_key_passes() {
    assert_eq!(device_problems(&base(), &capable_key()), vec![]);
}

#[test]
fn rp_ids_on_key_without_extension_are_refused() {
    let mut d = capable_key();
    d.extensions.retain(|e| e != "minPinLength");
    assert_eq!(
        device_problems(&base(), &d),
        one(
            "credential.fido2.min_pin_length_rp_ids",
            "this key does not support the minPinLength extension: RP ids for it are refused, not dropped; remove them or use a key with the extension"
        )
    );
}

#[test]
fn rp_ids_over_max_are_refused() {
    let mut t = base();
    t.credential.fido2.min_pin_length_rp_ids =
        vec!["a.example".into(), "b.example".into(), "c.example".into()];
    assert_eq!(
        device_problems(&t, &capable_key()),
        one(
            "credential.fido2.min_pin_length_rp_ids",
            "3 RP ids exceed this key's maxRPIDsForSetMinPINLength of 2"
        )
    );
    let mut d = capable_key();
    d.max_rpids_for_set_min_pin_length = None;
    assert_eq!(
        device_problems(&base(), &d),
        one(
            "credential.fido2.min_pin_length_rp_ids",
            "1 RP ids exceed this key's maxRPIDsForSetMinPINLength of 0"
        )
    );
}

#[test]
fn always_uv_needs_ctap21() {
    let mut t = base();
    t.credential.fido2.bio = None;
    t.credential.fido2.min_pin_length = None;
    t.credential.fido2.min_pin_length_rp_ids.clear();
    let mut d = capable_key();
    d.ctap21 = false;
    assert_eq!(
        device_problems(&t, &d),
        one(
            "credential.fido2.always_uv",
            "always-UV needs a CTAP 2.1 key; this key speaks CTAP 2.0 only"
        )
    );
    let mut d = capable_key();
    d.options.always_uv = false;
    assert_eq!(
        device_problems(&t, &d),
        one(
            "credential.fido2.always_uv",
            "this key does not support toggleAlwaysUv (authenticatorConfig with alwaysUv)"
        )
    );
}

#[test]
fn bio_needs_bio_enroll() {
    let mut d = capable_key();
    d.options.bio_enroll = false;
    assert_eq!(
        device_problems(&base(), &d),
        one(
            "credential.fido2.bio",
            "bio enrolment needs a key with bioEnroll; this key has no fingerprint enrolment"
        )
    );
}

#[test]
fn min_pin_length_needs_set_min_pin_length() {
    let mut t = base();
    t.credential.fido2.min_pin_length_rp_ids.clear();
    let mut d = capable_key();
    d.options.set_min_pin_length = false;
    assert_eq!(
        device_problems(&t, &d),
        one(
            "credential.fido2.min_pin_length",
            "this key does not support CTAP 2.1 setMinPINLength"
        )
    );
    t.credential.fido2.min_pin_length = None;
    t.credential.fido2.force_change_pin = true;
    assert_eq!(
        device_problems(&t, &d),
        one(
            "credential.fido2.force_change_pin",
            "this key does not support CTAP 2.1 setMinPINLength"
        )
    );
}

#[test]
fn reset_on_usb_key_that_cannot_reset_in_place_says_replug() {
    let mut t = base();
    t.credential.fido2.reset_before_issuance = true;
    let mut d = capable_key();
    d.can_reset_in_place = false;
    assert_eq!(
        device_problems(&t, &d),
        one(
            "credential.fido2.reset_before_issuance",
            "this USB key cannot be reset here: a CTAP reset must come within 5 to 10 seconds of power-up; use a station that runs the replug reset (it asks the operator to remove and reinsert the key, then resets it at once), or turn reset_before_issuance off"
        )
    );
    d.transport = KeyTransport::Nfc;
    assert_eq!(
        device_problems(&t, &d),
        one(
            "credential.fido2.reset_before_issuance",
            "this key cannot be reset in place: the reader could not power-cycle the field; lift the key off the reader and put it back, then issue again (or turn reset_before_issuance off)"
        )
    );
    d.can_reset_in_place = true;
    assert_eq!(device_problems(&t, &d), vec![]);
}

#[test]
fn key_with_unknown_pin_needs_reset() {
    let mut d = capable_key();
    d.options.client_pin_set = true;
    assert_eq!(
        device_problems(&base(), &d),
        one(
            "credential.fido2.reset_before_issuance",
            "the key already has a PIN the engine does not know; turn reset_before_issuance on or reset the key first"
        )
    );
}

#[test]
fn ctap20_key_gets_every_problem_at_once() {
    let d = DeviceFacts {
        ctap21: false,
        ..DeviceFacts::default()
    };
    let fields: Vec<String> = device_problems(&base(), &d)
        .into_iter()
        .map(|p| p.field)
        .collect();
    assert_eq!(
        fields,
        [
            "credential.fido2.always_uv",
            "credential.fido2.bio",
            "credential.fido2.min_pin_length",
            "credential.fido2.min_pin_length_rp_ids"
        ]
    );
}

// ---- display name mapping ----

fn attrs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn display_name_is_mapped() {
    let t = base();
    let a = attrs(&[("displayName", "Ada Lovelace"), ("serial", "1234")]);
    assert_eq!(
        render_display_name(&t.passkey["entra"], &a),
        Ok("Ada Lovelace key 1234".to_owned())
    );
}

#[test]
fn long_mapped_name_is_truncated_when_allowed() {
    let t = base();
    let a = attrs(&[
        ("displayName", "Äöü Ñandú Øresund-Łukasiewiczowa"),
        ("serial", "99"),
    ]);
    let out = render_display_name(&t.passkey["entra"], &a).unwrap();
    assert_eq!(out.chars().count(), 30);
    assert_eq!(out, "Äöü Ñandú Øresund-Łukasiewiczo");
    // A cut that ends in a space does not keep it.
    let a = attrs(&[
        ("displayName", "Äöü Ñandú Øresund-Łukasiewicz"),
        ("serial", "99"),
    ]);
    assert_eq!(
        render_display_name(&t.passkey["entra"], &a),
        Ok("Äöü Ñandú Øresund-Łukasiewicz".to_owned())
    );
}

#[test]
fn long_mapped_name_is_refused_with_its_length() {
    let mut t = base();
    entra(&mut t).truncate_display_name = false;
    let a = attrs(&[
        ("displayName", "Ada Augusta King-Noel"),
        ("serial", "12345"),
    ]);
    assert_eq!(
        render_display_name(&t.passkey["entra"], &a),
        Err(Problem::new(
            "passkey.entra.display_name",
            "display name \"Ada Augusta King-Noel key 12345\" is 31 characters after mapping; the IdP allows at most 30 (shorten the pattern or set truncate_display_name)"
        ))
    );
    // Exactly 30 passes.
    let a = attrs(&[("displayName", "Ada Augusta King-Noel"), ("serial", "1234")]);
    assert_eq!(
        render_display_name(&t.passkey["entra"], &a).map(|s| s.chars().count()),
        Ok(30)
    );
}

#[test]
fn unknown_or_missing_attribute_is_a_problem() {
    let mut t = base();
    let a = attrs(&[("displayName", "Ada")]);
    assert_eq!(
        render_display_name(&t.passkey["entra"], &a),
        Err(Problem::new(
            "passkey.entra.display_name",
            "attribute serial is not available to fill {serial} in the display name"
        ))
    );
    entra(&mut t).display_name = "{department}".into();
    assert_eq!(
        render_display_name(&t.passkey["entra"], &a)
            .unwrap_err()
            .message,
        "unknown placeholder {department} in display name; known: {displayName}, {userPrincipalName}, {givenName}, {surname}, {mail}, {employeeId}, {serial}"
    );
    entra(&mut t).display_name = "{displayName}".into();
    let blank = attrs(&[("displayName", "   ")]);
    assert_eq!(
        render_display_name(&t.passkey["entra"], &blank),
        Err(Problem::new(
            "passkey.entra.display_name",
            "display name is empty after mapping"
        ))
    );
}

#[test]
fn set_min_pin_length_needs_authenticator_config() {
    let mut t = base();
    t.credential.fido2.min_pin_length_rp_ids.clear();
    t.credential.fido2.always_uv = false;
    let mut d = capable_key();
    d.options.authnr_cfg = false;
    assert_eq!(
        device_problems(&t, &d),
        one(
            "credential.fido2.min_pin_length",
            "this key does not support CTAP 2.1 setMinPINLength"
        )
    );
}

#[test]
fn oversized_document_is_refused_before_parsing() {
    let big = " ".repeat(lifecycle::template::MAX_TEMPLATE_BYTES + 1);
    let want = TemplateError::TooLarge {
        size: big.len() as u64,
        max: lifecycle::template::MAX_TEMPLATE_BYTES,
    };
    assert_eq!(TemplateSet::from_toml_str(&big), Err(want.clone()));
    assert_eq!(TemplateSet::from_json_str(&big), Err(want));
}

#[test]
fn passkey_name_must_match_its_key() {
    let mut t = base();
    entra(&mut t).name = "other".into();
    assert_eq!(
        problems(&t),
        one(
            "passkey.entra.name",
            "name \"other\" differs from the template's key \"entra\" (call TemplateSet::fill_names after building templates in code)"
        )
    );
    t.fill_names();
    assert_eq!(problems(&t), vec![]);
}

mod never_panics {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_text(text in "\\PC{0,300}") {
            let _ = TemplateSet::from_toml_str(&text);
            let _ = TemplateSet::from_json_str(&text);
        }

        #[test]
        fn mutated_example(cut in 0usize..2000, insert in "[ \\[\\]{}=,\"a-z0-9\n]{0,8}") {
            for src in [TOML, JSON] {
                let mut text: String = src.chars().take(cut).collect();
                text.push_str(&insert);
                text.extend(src.chars().skip(cut + 1));
                if let Err(TemplateError::Parse { line: Some(l), .. }) = TemplateSet::from_toml_str(&text) {
                    prop_assert!(l >= 1 && l <= text.lines().count() + 1);
                }
                let _ = TemplateSet::from_json_str(&text);
            }
        }

        #[test]
        fn any_display_name_pattern(pattern in "\\PC{0,60}", value in "\\PC{0,60}") {
            let mut t = base();
            entra(&mut t).display_name = pattern;
            let _ = t.validate();
            let a = attrs(&[("displayName", &value), ("serial", "1")]);
            if let Ok(name) = render_display_name(&t.passkey["entra"], &a) {
                prop_assert!(name.chars().count() <= 30);
                prop_assert!(!name.is_empty());
            }
        }
    }
}

#[test]
fn every_shipped_template_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut loaded = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let set = TemplateSet::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            set.passkey_templates().len(),
            set.credential.passkey_templates.len()
        );
        loaded += 1;
    }
    assert!(loaded >= 3);
    let minimal = TemplateSet::load(&dir.join("entra-v1-minimal.toml")).unwrap();
    assert_eq!(minimal.passkey["entra"].challenge_timeout_ms(), 5 * 60_000);
    assert!(minimal.credential.lifecycle.auto_initiate_after_issuance);
}
