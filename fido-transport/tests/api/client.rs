//! The blocking `Authenticator` client against the software authenticator, over the
//! in-process CTAPHID pipe (64-byte reports through fido-core's HID state machines on
//! both sides, the key on its own thread): every client operation, progress and
//! cancellation.

use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use fido_core::attestation::verify_assertion;
use fido_core::authdata::rp_id_hash;
use fido_core::cbor::Value;
use fido_core::commands::{
    CredentialDescriptor, GetAssertionExtensions, MakeCredentialExtensions, RpEntity, UserEntity,
};
use fido_core::pin::{Permissions, PinUvAuthProtocol};
use fido_core::CtapStatus;
use fido_transport::client::{
    Authenticator, CredentialsMetadata, EnrollProgress, GetAssertionArgs, MakeCredentialArgs,
};
use fido_transport::hid::{CtapHidTransport, InProcessHid};
use fido_transport::softkey::{
    ManualClock, SeededRng, SoftAuthenticator, SoftConfig, SoftTransport, UserPresence,
};
use fido_transport::{Error, Progress, Transport};

const PIN: &str = "4821";
const RP: &str = "login.microsoft.com";

type HidKey = Authenticator<CtapHidTransport<InProcessHid>>;

/// A client over in-process CTAPHID to a fresh software key, plus the key itself.
fn hid_key(config: SoftConfig) -> (HidKey, Arc<Mutex<SoftAuthenticator>>) {
    let soft = SoftAuthenticator::with_rng_and_clock(config, SeededRng::new(7), ManualClock::new())
        .unwrap();
    hid_key_from(soft)
}

fn hid_key_from(soft: SoftAuthenticator) -> (HidKey, Arc<Mutex<SoftAuthenticator>>) {
    let shared = Arc::new(Mutex::new(soft));
    let pipe = InProcessHid::new(shared.clone());
    let transport = CtapHidTransport::new(pipe).unwrap();
    (Authenticator::new(transport), shared)
}

/// A key with PIN [`PIN`] set.
fn key_with_pin(config: SoftConfig) -> (HidKey, Arc<Mutex<SoftAuthenticator>>) {
    let (mut a, s) = hid_key(config);
    a.set_pin(PIN).unwrap();
    (a, s)
}

fn rp() -> RpEntity {
    RpEntity {
        id: RP.into(),
        name: Some("Microsoft".into()),
    }
}

fn user(id: u8, name: &str) -> UserEntity {
    UserEntity {
        id: vec![id; 16],
        name: Some(name.into()),
        display_name: Some(name.to_uppercase()),
    }
}

fn register<T: Transport>(a: &mut Authenticator<T>, id: u8, name: &str) -> Vec<u8> {
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap();
    a.make_credential(
        &MakeCredentialArgs::new([id; 32], rp(), user(id, name)),
        Some(&t),
        &mut |_| {},
    )
    .unwrap()
    .credential_id
}

// ---------------------------------------------------------------------------------
// getInfo, PIN

#[test]
fn get_info_is_read_once_per_session() {
    let (mut a, _) = hid_key(SoftConfig::default());
    assert!(a.info().unwrap().is_ctap21());
    assert_eq!(a.info().unwrap().supports_option("clientPin"), Some(false));
    assert_eq!(a.stats().round_trips, 1);
}

#[test]
fn set_pin_then_retries_then_change_pin() {
    let (mut a, s) = hid_key(SoftConfig::default());
    a.set_pin(PIN).unwrap();
    assert_eq!(a.info().unwrap().supports_option("clientPin"), Some(true));
    assert_eq!(a.pin_retries().unwrap().retries, 8);
    let err = a.change_pin("0000", "135790").unwrap_err();
    assert!(
        matches!(
            &err,
            Error::PinInvalid {
                retries_left: 7,
                power_cycle_required: false
            }
        ) && err.to_string().contains("7 attempt(s) left"),
        "{err}"
    );
    a.change_pin(PIN, "135790").unwrap();
    assert_eq!(a.pin_retries().unwrap().retries, 8);
    assert!(s.lock().unwrap().state().pin.is_some());
    a.pin_token("135790", Permissions::GET_ASSERTION, Some(RP))
        .unwrap();
}

#[test]
fn three_wrong_pins_need_a_power_cycle_and_the_client_says_so() {
    let (mut a, _) = key_with_pin(SoftConfig::default());
    for _ in 0..3 {
        assert!(a
            .pin_token("0000", Permissions::MAKE_CREDENTIAL, Some(RP))
            .is_err());
    }
    let r = a.pin_retries().unwrap();
    assert_eq!(r.retries, 5);
    assert!(r.power_cycle_required);
    // changePIN does not even try now.
    let err = a.change_pin(PIN, "246810").unwrap_err();
    assert!(matches!(err, Error::Ctap(CtapStatus::PinAuthBlocked)));
    assert!(err.to_string().contains("reattach"));
}

#[test]
fn pin_token_uses_protocol_two_with_exact_permissions() {
    let (mut a, _) = key_with_pin(SoftConfig::default());
    let t = a
        .pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap();
    assert_eq!(t.protocol(), PinUvAuthProtocol::Two);
    // A cm token is refused locally for makeCredential...
    let err = a
        .make_credential(
            &MakeCredentialArgs::new([1; 32], rp(), user(1, "a")),
            Some(&t),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(matches!(err, Error::InvalidArgument(_)));
    // ...and works for credential management.
    assert_eq!(a.credentials_metadata(&t).unwrap().existing, 0);
}

#[test]
fn ctap20_keys_get_a_protocol_one_pin_token() {
    let (mut a, _) = key_with_pin(SoftConfig::ctap20());
    assert_eq!(a.pin_protocol().unwrap(), PinUvAuthProtocol::One);
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap();
    assert_eq!(t.protocol(), PinUvAuthProtocol::One);
    let r = a
        .make_credential(
            &MakeCredentialArgs::new([3; 32], rp(), user(3, "c")),
            Some(&t),
            &mut |_| {},
        )
        .unwrap();
    assert!(
        r.attestation.auth_data().flags().bits() & 0x04 != 0,
        "UV flag"
    );
    assert!(matches!(
        a.credentials_metadata(&t),
        Err(Error::Unsupported(_))
    ));
}

#[test]
fn uv_token_from_the_simulated_fingerprint() {
    let (mut a, s) = key_with_pin(SoftConfig::with_bio());
    let be = a.pin_token(PIN, Permissions::BIO_ENROLLMENT, None).unwrap();
    a.bio_enroll(&be, None, &mut |_| {}).unwrap();
    a.refresh_info().unwrap();
    let t = a
        .uv_token(Permissions::GET_ASSERTION, Some(RP), &mut |_| {})
        .unwrap();
    assert_eq!(t.rp_id(), Some(RP));
    assert!(a.uv_retries().unwrap() > 0);
    s.lock().unwrap().control().set_fingerprint_matches(false);
    let err = a
        .uv_token(Permissions::GET_ASSERTION, Some(RP), &mut |_| {})
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::UvInvalid {
                retries_left: Some(_)
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("attempt(s) left"), "{err}");
    assert_eq!(err.ctap_status(), Some(fido_core::CtapStatus::UvInvalid));
}

// ---------------------------------------------------------------------------------
// Reset

#[test]
fn reset_within_the_window_erases_the_key() {
    let (mut a, _) = key_with_pin(SoftConfig::default());
    register(&mut a, 1, "alice");
    let mut touches = 0;
    a.reset(&mut |p| touches += usize::from(p == Progress::UserPresenceNeeded))
        .unwrap();
    assert!(touches >= 1);
    assert_eq!(a.info().unwrap().supports_option("clientPin"), Some(false));
}

#[test]
fn reset_after_the_window_over_usb_says_reattach_within_10_seconds() {
    let clock = ManualClock::new();
    let soft = SoftAuthenticator::with_rng_and_clock(
        SoftConfig::default(),
        SeededRng::new(1),
        clock.clone(),
    )
    .unwrap();
    let (mut a, _) = hid_key_from(soft);
    clock.advance(Duration::from_secs(11));
    let err = a.reset(&mut |_| {}).unwrap_err();
    assert!(matches!(err, Error::ReattachRequired), "{err}");
    assert_eq!(err.ctap_status(), Some(fido_core::CtapStatus::NotAllowed));
    assert!(
        err.to_string()
            .starts_with("too late, replug and try again"),
        "{err}"
    );
}

#[test]
fn reset_after_the_window_power_cycles_a_transport_that_can() {
    let clock = ManualClock::new();
    let soft = SoftAuthenticator::with_rng_and_clock(
        SoftConfig::default(),
        SeededRng::new(2),
        clock.clone(),
    )
    .unwrap();
    let mut a = Authenticator::new(SoftTransport::new(soft));
    a.set_pin(PIN).unwrap();
    clock.advance(Duration::from_secs(11));
    a.reset(&mut |_| {}).unwrap();
    assert_eq!(a.info().unwrap().supports_option("clientPin"), Some(false));
}

// ---------------------------------------------------------------------------------
// authenticatorConfig

#[test]
fn set_min_pin_length_with_rp_ids_and_forced_change() {
    let (mut a, s) = key_with_pin(SoftConfig::default());
    let t = a
        .pin_token(PIN, Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap();
    a.set_min_pin_length(Some(6), &[RP.to_owned()], true, Some(&t))
        .unwrap();
    let info = a.info().unwrap();
    assert_eq!(info.min_pin_length, Some(6));
    assert_eq!(info.force_pin_change, Some(true));
    assert_eq!(s.lock().unwrap().state().min_pin_length_rpids, vec![RP]);
    // Too many RP ids: refused, not truncated.
    let three: Vec<String> = (0..3).map(|i| format!("rp{i}.example")).collect();
    assert!(matches!(
        a.set_min_pin_length(None, &three, false, Some(&t)),
        Err(Error::Unsupported(_))
    ));
    // No token until the PIN is changed.
    assert!(matches!(
        a.pin_token(PIN, Permissions::AUTHENTICATOR_CONFIG, None),
        Err(Error::Ctap(CtapStatus::PinPolicyViolation))
    ));
    // The new PIN must meet the new minimum; then the forced change is cleared.
    assert!(a.change_pin(PIN, "12345").is_err());
    a.change_pin(PIN, "123456").unwrap();
    assert_ne!(a.info().unwrap().force_pin_change, Some(true));
    a.pin_token("123456", Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap();
}

#[test]
fn always_uv_is_toggled_only_when_needed() {
    let (mut a, _) = key_with_pin(SoftConfig::default());
    let t = a
        .pin_token(PIN, Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap();
    assert!(!a.set_always_uv(false, Some(&t)).unwrap());
    assert!(a.set_always_uv(true, Some(&t)).unwrap());
    assert_eq!(a.info().unwrap().supports_option("alwaysUv"), Some(true));
    assert!(!a.toggle_always_uv(Some(&t)).unwrap());
}

#[test]
fn enterprise_attestation_is_enabled_when_offered() {
    let config = SoftConfig {
        enterprise_attestation: true,
        ..SoftConfig::default()
    };
    let (mut a, _) = key_with_pin(config);
    let t = a
        .pin_token(PIN, Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap();
    a.enable_enterprise_attestation(Some(&t)).unwrap();
    assert_eq!(a.info().unwrap().supports_option("ep"), Some(true));
    let (mut b, _) = key_with_pin(SoftConfig::default());
    assert!(matches!(
        b.enable_enterprise_attestation(None),
        Err(Error::Unsupported(_))
    ));
}

// ---------------------------------------------------------------------------------
// Bio enrollment

#[test]
fn bio_enroll_enumerate_rename_remove() {
    let (mut a, _) = key_with_pin(SoftConfig::with_bio());
    let info = a.bio_sensor_info().unwrap();
    let needed = info.max_capture_samples_required_for_enroll.unwrap();
    let t = a.pin_token(PIN, Permissions::BIO_ENROLLMENT, None).unwrap();
    let mut samples = Vec::new();
    let id = a
        .bio_enroll(&t, Some(10_000), &mut |p| {
            if let EnrollProgress::Sample { remaining, .. } = p {
                samples.push(remaining)
            }
        })
        .unwrap();
    assert_eq!(samples.len() as u32, needed);
    assert_eq!(samples.last(), Some(&0));
    a.bio_rename(&t, &id, "right thumb").unwrap();
    let list = a.bio_enumerate(&t).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        list[0].template_friendly_name.as_deref(),
        Some("right thumb")
    );
    a.bio_remove(&t, &id).unwrap();
    assert!(a.bio_enumerate(&t).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------
// makeCredential / getAssertion

#[test]
fn make_credential_attests_and_get_assertion_follows_every_credential() {
    let (mut a, _) = key_with_pin(SoftConfig::default());
    let mut progress = Vec::new();
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap();
    let made = a
        .make_credential(
            &MakeCredentialArgs::new([9; 32], rp(), user(1, "alice")),
            Some(&t),
            &mut |p| progress.push(p),
        )
        .unwrap();
    assert!(progress.contains(&Progress::UserPresenceNeeded));
    let verified = made.attestation.verify(&[9; 32]).unwrap();
    assert_eq!(verified.credential_id, made.credential_id);
    register(&mut a, 2, "bob");

    let t = a
        .pin_token(PIN, Permissions::GET_ASSERTION, Some(RP))
        .unwrap();
    let cdh = [4; 32];
    let out = a
        .get_assertion(&GetAssertionArgs::new(RP, cdh), Some(&t), &mut |_| {})
        .unwrap();
    assert_eq!(out.len(), 2);
    let alice = out
        .iter()
        .find(|x| x.credential.id == made.credential_id)
        .unwrap();
    verify_assertion(
        &made.public_key,
        &alice.auth_data_bytes,
        &cdh,
        &alice.signature,
    )
    .unwrap();
    assert!(alice.auth_data.flags().bits() & 0x04 != 0, "UV flag");

    // Allow list with one entry, no token: user presence only.
    let mut args = GetAssertionArgs::new(RP, cdh);
    args.allow_list = vec![CredentialDescriptor::public_key(made.credential_id.clone())];
    let out = a.get_assertion(&args, None, &mut |_| {}).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].credential.id, made.credential_id);
}

#[test]
fn a_denied_touch_is_a_ctap_error() {
    let (mut a, s) = key_with_pin(SoftConfig::default());
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap();
    s.lock().unwrap().control().set_presence(UserPresence::Deny);
    let err = a
        .make_credential(
            &MakeCredentialArgs::new([1; 32], rp(), user(1, "a")),
            Some(&t),
            &mut |_| {},
        )
        .unwrap_err();
    assert!(
        matches!(err, Error::Ctap(CtapStatus::OperationDenied)),
        "{err}"
    );
}

#[test]
fn a_wait_for_touch_can_be_cancelled_from_another_thread() {
    let (mut a, s) = key_with_pin(SoftConfig::default());
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap();
    let control = s.lock().unwrap().control();
    control.set_presence(UserPresence::Delay(Duration::from_secs(30)));
    let cancel = a.cancel_token();
    let canceller = thread::spawn(move || {
        thread::sleep(Duration::from_millis(300));
        cancel.cancel();
    });
    let started = std::time::Instant::now();
    let err = a
        .make_credential(
            &MakeCredentialArgs::new([1; 32], rp(), user(1, "a")),
            Some(&t),
            &mut |_| {},
        )
        .unwrap_err();
    canceller.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(matches!(err, Error::Cancelled), "{err:?}");
}

// ---------------------------------------------------------------------------------
// Credential management

#[test]
fn credential_management_enumerates_updates_and_deletes() {
    let (mut a, _) = key_with_pin(SoftConfig::default());
    let alice = register(&mut a, 1, "alice");
    register(&mut a, 2, "bob");
    let t = a
        .pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap();
    let meta = a.credentials_metadata(&t).unwrap();
    assert_eq!(meta.existing, 2);
    let rps = a.enumerate_rps(&t).unwrap();
    assert_eq!(rps.len(), 1);
    assert_eq!(rps[0].rp.id, RP);
    assert_eq!(rps[0].rp_id_hash, rp_id_hash(RP));
    let creds = a.enumerate_credentials(&t, rp_id_hash(RP)).unwrap();
    assert_eq!(creds.len(), 2);
    let mine = creds
        .iter()
        .find(|c| c.credential_id.id == alice)
        .unwrap()
        .clone();
    let renamed = UserEntity {
        name: Some("alice@contoso.com".into()),
        ..mine.user.clone()
    };
    a.update_user(&t, &mine.credential_id, &renamed).unwrap();
    let creds = a.enumerate_credentials(&t, rp_id_hash(RP)).unwrap();
    assert!(creds
        .iter()
        .any(|c| c.user.name.as_deref() == Some("alice@contoso.com")));
    a.delete_credential(&t, &mine.credential_id).unwrap();
    assert_eq!(
        a.credentials_metadata(&t).unwrap(),
        CredentialsMetadata {
            existing: 1,
            remaining: meta.remaining + 1
        }
    );
    assert!(a
        .enumerate_credentials(&t, rp_id_hash("nobody.example"))
        .unwrap()
        .is_empty());
}

// ---------------------------------------------------------------------------------
// Large blobs

#[test]
fn large_blob_array_round_trips_in_fragments() {
    let config = SoftConfig {
        max_msg_size: 256,
        max_large_blob_array: 2048,
        ..SoftConfig::default()
    };
    let (mut a, _) = key_with_pin(config);
    assert!(a.read_large_blob_array().unwrap().is_empty());
    let t = a
        .pin_token(PIN, Permissions::LARGE_BLOB_WRITE, None)
        .unwrap();
    let entry = Value::map([
        (Value::from(1u8), Value::Bytes(vec![0x5A; 700])),
        (Value::from(2u8), Value::Bytes(vec![1; 12])),
        (Value::from(3u8), Value::from(700u32)),
    ]);
    let before = a.stats().round_trips;
    a.write_large_blob_array(&t, std::slice::from_ref(&entry))
        .unwrap();
    // 700+ bytes in fragments of 192: at least four writes.
    assert!(a.stats().round_trips - before >= 4);
    assert_eq!(a.read_large_blob_array().unwrap(), vec![entry]);
    assert!(matches!(
        a.write_large_blob_array(&t, &[Value::Bytes(vec![0; 3000])]),
        Err(Error::InvalidArgument(_))
    ));
}

/// Registers a discoverable credential with the largeBlobKey extension; its key.
fn register_with_large_blob_key<T: Transport>(
    a: &mut Authenticator<T>,
    id: u8,
    name: &str,
) -> Vec<u8> {
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap();
    let mut args = MakeCredentialArgs::new([id; 32], rp(), user(id, name));
    args.extensions = Some(MakeCredentialExtensions {
        large_blob_key: Some(true),
        ..MakeCredentialExtensions::default()
    });
    let made = a.make_credential(&args, Some(&t), &mut |_| {}).unwrap();
    made.large_blob_key.expect("largeBlobKey").expose().to_vec()
}

#[test]
fn per_credential_large_blobs_are_kept_apart_and_replaced() {
    let config = SoftConfig {
        max_msg_size: 256,
        max_large_blob_array: 2048,
        ..SoftConfig::default()
    };
    let (mut a, _) = key_with_pin(config);
    let alice = register_with_large_blob_key(&mut a, 1, "alice");
    let bob = register_with_large_blob_key(&mut a, 2, "bob");
    assert_ne!(alice, bob);
    assert_eq!(a.read_large_blob(&alice).unwrap(), None);
    let t = a
        .pin_token(PIN, Permissions::LARGE_BLOB_WRITE, None)
        .unwrap();
    let alice_blob = b"alice's certificate \x00\x01".repeat(40);
    a.write_large_blob(&t, &alice, &alice_blob).unwrap();
    a.write_large_blob(&t, &bob, b"bob's blob").unwrap();
    assert_eq!(a.read_large_blob_array().unwrap().len(), 2);
    assert_eq!(a.read_large_blob(&alice).unwrap(), Some(alice_blob));
    assert_eq!(
        a.read_large_blob(&bob).unwrap(),
        Some(b"bob's blob".to_vec())
    );

    // Replacing alice's blob keeps bob's entry and leaves one entry for alice.
    a.write_large_blob(&t, &alice, b"new").unwrap();
    assert_eq!(a.read_large_blob_array().unwrap().len(), 2);
    assert_eq!(a.read_large_blob(&alice).unwrap(), Some(b"new".to_vec()));
    assert_eq!(
        a.read_large_blob(&bob).unwrap(),
        Some(b"bob's blob".to_vec())
    );

    // The key handed back by getAssertion reads the same blob.
    let t_ga = a
        .pin_token(PIN, Permissions::GET_ASSERTION, Some(RP))
        .unwrap();
    let mut ga = GetAssertionArgs::new(RP, [5; 32]);
    ga.extensions = Some(GetAssertionExtensions {
        large_blob_key: Some(true),
        ..GetAssertionExtensions::default()
    });
    let out = a.get_assertion(&ga, Some(&t_ga), &mut |_| {}).unwrap();
    let from_assertion: Vec<Option<Vec<u8>>> = out
        .iter()
        .map(|x| {
            let key = x.large_blob_key.as_ref().expect("largeBlobKey");
            a.read_large_blob(key.expose()).unwrap()
        })
        .collect();
    assert_eq!(from_assertion.len(), 2);
    assert!(from_assertion.contains(&Some(b"new".to_vec())));
    assert!(from_assertion.contains(&Some(b"bob's blob".to_vec())));

    // Removing bob's blob keeps alice's; a second removal writes nothing. (a fresh token: getting the assertion token rotated the last one).
    let t = a
        .pin_token(PIN, Permissions::LARGE_BLOB_WRITE, None)
        .unwrap();
    assert!(a.remove_large_blob(&t, &bob).unwrap());
    assert!(!a.remove_large_blob(&t, &bob).unwrap());
    assert_eq!(a.read_large_blob(&bob).unwrap(), None);
    assert_eq!(a.read_large_blob(&alice).unwrap(), Some(b"new".to_vec()));
    // A blob whose entry does not fit the key's array is refused before sending.
    // (Hash output does not compress: 4000 bytes against a 2048-byte array.)
    let noise: Vec<u8> = (0..125u32)
        .flat_map(|i| {
            use sha2::Digest;
            sha2::Sha256::digest(i.to_le_bytes())
        })
        .collect();
    assert!(matches!(
        a.write_large_blob(&t, &bob, &noise),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        a.read_large_blob(&[0; 16]),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn enumeration_over_several_rps_uses_one_token_throughout() {
    let (mut a, _) = key_with_pin(SoftConfig::default());
    let rps = ["a.example", "b.example", "c.example"];
    for (i, id) in rps.iter().enumerate() {
        let t = a
            .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(id))
            .unwrap();
        let args = MakeCredentialArgs::new(
            [i as u8; 32],
            RpEntity {
                id: (*id).into(),
                name: None,
            },
            user(i as u8, "u"),
        );
        a.make_credential(&args, Some(&t), &mut |_| {}).unwrap();
    }
    let t = a
        .pin_token(PIN, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap();
    let before = a.stats().round_trips;
    let mut found: Vec<String> = a
        .enumerate_rps(&t)
        .unwrap()
        .into_iter()
        .map(|r| r.rp.id)
        .collect();
    found.sort();
    assert_eq!(found, rps);
    // Begin plus two GetNext, nothing else in between (no token re-acquired).
    assert_eq!(a.stats().round_trips - before, 3);
}

#[test]
fn a_boxed_transport_chosen_at_run_time_works() {
    let soft = SoftAuthenticator::new(SoftConfig::default()).unwrap();
    let boxed: Box<dyn Transport> = Box::new(SoftTransport::new(soft));
    let mut a = Authenticator::new(boxed);
    a.set_pin(PIN).unwrap();
    assert_eq!(a.pin_retries().unwrap().retries, 8);
}
