//! Issue 12 item 8 against trussed's firmware: the makeCredential extensions the device
//! half builds from Entra's creation options (credProtect at the policy's level,
//! `hmac-secret: true`) are taken by an independent authenticator, and its authData
//! reports them back.

use super::firmware::{with_fresh_firmware, FirmwarePipe};
use super::*;

use fido_core::commands::{MakeCredentialExtensions, RpEntity, UserEntity};
use fido_core::pin::Permissions;
use fido_transport::client::{Authenticator, MakeCredentialArgs};
use sha2::{Digest, Sha256};

const RP: &str = "login.microsoft.com";

fn client(pipe: FirmwarePipe) -> Authenticator<CtapHidTransport<FirmwarePipe>> {
    let config = HidConfig {
        inactivity_timeout: Duration::from_secs(5),
        transaction_timeout: Duration::from_secs(30),
        ..HidConfig::default()
    };
    Authenticator::new(CtapHidTransport::with_config(pipe, config).unwrap())
}

#[test]
fn entras_cred_protect_and_hmac_secret_reach_the_trussed_firmware() {
    with_fresh_firmware(false, |pipe, _uptime| {
        let mut key = client(pipe);
        let info = key.info().unwrap().clone();
        assert!(info.has_extension("credProtect"), "{:?}", info.extensions);
        assert!(info.has_extension("hmac-secret"), "{:?}", info.extensions);
        key.set_pin("24681357").unwrap();
        for (user, level) in [(1u8, 1u8), (2, 2), (3, 3)] {
            let cdh: [u8; 32] = Sha256::digest([b'r', user]).into();
            let mut args = MakeCredentialArgs::new(
                cdh,
                RpEntity {
                    id: RP.into(),
                    name: Some("Microsoft".into()),
                },
                UserEntity {
                    id: vec![user; 16],
                    name: Some(format!("user{user}@contoso.com")),
                    display_name: Some(format!("User {user}")),
                },
            );
            args.resident_key = true;
            // As `keysmith_device` builds it from the wire's MakeCredential step.
            args.extensions = Some(MakeCredentialExtensions {
                cred_protect: Some(level),
                hmac_secret: Some(true),
                ..MakeCredentialExtensions::default()
            });
            let token = key
                .pin_token("24681357", Permissions::MAKE_CREDENTIAL, Some(RP))
                .unwrap();
            let made = key
                .make_credential(&args, Some(&token), &mut |_| {})
                .unwrap();
            let ad = made.attestation.auth_data();
            assert_eq!(ad.cred_protect(), Some(level), "level {level}");
            assert_eq!(ad.hmac_secret_created(), Some(true), "level {level}");
        }
    });
}

/// Issue 12 item 5 against trussed's firmware: it offers neither CTAP 2.2
/// `encIdentifier` (no getInfo 0x19, no `perCredMgmtRO`) nor enterprise attestation (no
/// `ep`). The persistent token is refused before the PIN is sent, so the engine keeps the
/// station's serial source for such a key. (This harness has no attestation certificate:
/// self attestation, so no certificate serial either.)
#[test]
fn the_trussed_firmware_proves_no_identity() {
    with_fresh_firmware(false, |pipe, _uptime| {
        let mut key = client(pipe);
        let info = key.info().unwrap().clone();
        assert_eq!(info.enc_identifier, None);
        assert_eq!(info.supports_option("perCredMgmtRO"), None);
        assert_eq!(info.supports_option("ep"), None);
        key.set_pin("24681357").unwrap();
        let e = key
            .pin_token(
                "24681357",
                Permissions::PERSISTENT_CREDENTIAL_MANAGEMENT_READ_ONLY,
                None,
            )
            .unwrap_err();
        assert!(
            matches!(e, Error::Unsupported(ref m) if m.contains("perCredMgmtRO")),
            "{e}"
        );
        let token = key
            .pin_token("24681357", Permissions::MAKE_CREDENTIAL, Some(RP))
            .unwrap();
        let args = MakeCredentialArgs::new(
            [7; 32],
            RpEntity {
                id: RP.into(),
                name: None,
            },
            UserEntity {
                id: vec![7; 16],
                name: Some("user7@contoso.com".into()),
                display_name: None,
            },
        );
        let made = key
            .make_credential(&args, Some(&token), &mut |_| {})
            .unwrap();
        assert!(!made.attestation.enterprise_attestation());
        assert_eq!(made.attestation.leaf_certificate_serial(), None);
    });
}
