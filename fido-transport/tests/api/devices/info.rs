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
