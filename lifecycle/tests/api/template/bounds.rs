//! Values that pass a naive check but can never work later (issue 14 item 4): each is
//! refused by `template check`, naming the field.

use super::*;

#[test]
fn min_pin_length_above_the_transport_pin_is_refused() {
    // The transport PIN has 16 digits: a minimum of 17..=63 (which CTAP allows) makes
    // the key refuse it after setMinPINLength, so issuance could never succeed.
    let mut t = base();
    t.credential.fido2.min_pin_length = Some(16);
    assert_eq!(problems(&t), vec![]);
    for n in [17, 32, 63] {
        t.credential.fido2.min_pin_length = Some(n);
        assert_eq!(
            problems(&t),
            one(
                "credential.fido2.min_pin_length",
                &format!("minimum PIN length must be between 4 and 16 (the transport PIN has 16 digits), got {n}")
            ),
            "min_pin_length {n}"
        );
    }
    assert_eq!(lifecycle::template::MAX_MIN_PIN_LENGTH, 16);
}

#[test]
fn control_characters_in_the_display_name_are_refused_by_the_check() {
    for (text, shown) in [
        ("Key\u{7} {serial}", "'\\u{7}'"),
        ("Key\0{serial}", "'\\0'"),
        ("Key\n{serial}", "'\\n'"),
        ("Key\u{9b}{serial}", "'\\u{9b}'"),
    ] {
        let mut t = base();
        entra(&mut t).display_name = text.to_owned();
        assert_eq!(
            problems(&t),
            one(
                "passkey.entra.display_name",
                &format!("display name contains the control character {shown}; the IdP refuses control characters")
            ),
            "{text:?}"
        );
    }
}

#[test]
fn a_control_character_from_a_user_attribute_is_refused_when_rendered() {
    let t = base();
    let mut a = BTreeMap::new();
    a.insert("displayName".to_owned(), "Ada\u{7}Lovelace".to_owned());
    a.insert("serial".to_owned(), "1234".to_owned());
    let p = render_display_name(&t.passkey["entra"], &a).unwrap_err();
    assert_eq!(p.field, "passkey.entra.display_name");
    assert!(p.message.contains("control character '\\u{7}'"), "{p:?}");
}
