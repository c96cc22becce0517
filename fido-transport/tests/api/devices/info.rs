//! getInfo 0x16-0x1F and the persistent PinUvAuthToken (`pcmr`) on the software key.

use fido_core::pin::Permissions;
use fido_transport::softkey::SoftConfig;
use fido_transport::Error;

use super::{soft_key, PIN};

#[test]
fn yubikey_like_key_advertises_ctap22_fields() {
    let (mut key, _t, _c) = soft_key(SoftConfig::yubikey_like());
    let info = key.info().unwrap().clone();
    assert_eq!(info.attestation_formats, Some(vec!["packed".to_owned()]));
    assert!(info.needs_long_touch_for_reset());
    assert_eq!(info.reset_allowed_over("usb"), Some(true));
    assert_eq!(info.reset_allowed_over("nfc"), Some(false));
    assert_eq!(info.max_pin_length, Some(63));
    assert_eq!(info.supports_config_command(2), Some(true));
    assert_eq!(info.supports_option("perCredMgmtRO"), Some(true));
    assert_eq!(info.enc_identifier.as_ref().map(Vec::len), Some(32));
    // The default key says none of it.
    let (mut plain, _t, _c) = soft_key(SoftConfig::default());
    let info = plain.info().unwrap().clone();
    assert_eq!(info.long_touch_for_reset, None);
    assert_eq!(info.transports_for_reset, None);
    assert_eq!(info.reset_allowed_over("nfc"), None);
    assert_eq!(info.enc_identifier, None);
}

#[test]
fn persistent_token_decrypts_the_device_identifier() {
    let (mut key, _t, _c) = soft_key(SoftConfig::yubikey_like());
    key.set_pin(PIN).unwrap();
    let ppuat = key
        .pin_token(
            PIN,
            Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY,
            None,
        )
        .unwrap();
    let id = key.device_identifier(&ppuat).unwrap();
    assert_eq!(id.as_deref(), Some(&b"yubikey-like-id!"[..]));
    // Stable across tokens and power cycles (the persistent token survives both).
    let again = key
        .pin_token(
            PIN,
            Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY,
            None,
        )
        .unwrap();
    assert_eq!(key.device_identifier(&again).unwrap(), id);
    // A regular token is refused before anything is sent.
    let mc = key
        .pin_token(
            PIN,
            Permissions::MAKE_CREDENTIAL,
            Some("login.microsoft.com"),
        )
        .unwrap();
    assert!(matches!(
        key.device_identifier(&mc),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn pcmr_needs_the_per_cred_mgmt_ro_option() {
    let (mut key, _t, _c) = soft_key(SoftConfig::default());
    key.set_pin(PIN).unwrap();
    let e = key
        .pin_token(
            PIN,
            Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY,
            None,
        )
        .unwrap_err();
    assert!(
        matches!(e, Error::Unsupported(ref m) if m.contains("perCredMgmtRO")),
        "{e}"
    );
}

/// Issue 12 item 5: an enterprise attestation is marked as such through the client and
/// the WebAuthn attestation object, and the leaf certificate's serial is readable (the
/// key's identity only under enterprise attestation; a batch certificate is shared).
#[test]
fn enterprise_attestation_and_the_leaf_serial_round_trip() {
    use fido_core::attestation::AttestationObject;
    use fido_transport::client::MakeCredentialArgs;
    use x509_cert::der::Decode;

    let config = SoftConfig {
        enterprise_attestation: true,
        ..SoftConfig::default()
    };
    let (mut key, t, _c) = soft_key(config);
    key.enable_enterprise_attestation(None).unwrap();
    key.set_pin(PIN).unwrap();
    let cert = t.with(|a| a.attestation_certificate().to_vec());
    let expected = x509_cert::Certificate::from_der(&cert)
        .unwrap()
        .tbs_certificate
        .serial_number
        .as_bytes()
        .to_vec();
    let make = |key: &mut fido_transport::client::Authenticator<_>, ep: Option<u8>, id: u8| {
        let token = key
            .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(super::RP))
            .unwrap();
        let mut args = MakeCredentialArgs::new([id; 32], super::rp(), super::user(id));
        args.enterprise_attestation = ep;
        key.make_credential(&args, Some(&token), &mut |_| {})
            .unwrap()
    };
    let ep = make(&mut key, Some(2), 1);
    assert_eq!(ep.enterprise_attestation, Some(true));
    assert!(ep.attestation.enterprise_attestation());
    assert_eq!(
        ep.attestation.leaf_certificate_serial(),
        Some(expected.clone())
    );
    // Through the WebAuthn object and the CTAP response map, and off again.
    let back = AttestationObject::from_cbor(&ep.attestation.to_cbor()).unwrap();
    assert!(back.enterprise_attestation());
    assert_eq!(back, ep.attestation);
    let ctap = AttestationObject::from_ctap_response(&ep.attestation.to_ctap_response()).unwrap();
    assert!(ctap.enterprise_attestation());
    let plain = back.clone().with_enterprise_attestation(false);
    assert!(!AttestationObject::from_cbor(&plain.to_cbor())
        .unwrap()
        .enterprise_attestation());
    // Not asked: the same (batch) certificate, not marked.
    let batch = make(&mut key, None, 2);
    assert!(!batch.attestation.enterprise_attestation());
    assert_eq!(batch.attestation.leaf_certificate_serial(), Some(expected));
}
