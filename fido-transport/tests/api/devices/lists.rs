//! Exclude and allow lists longer than `maxCredentialCountInList`, ids longer than
//! `maxCredentialIdLength`, pre-flight chunks shrunk to fit `maxMsgSize`.

use fido_core::commands::CredentialDescriptor;
use fido_core::pin::Permissions;
use fido_core::CtapStatus;
use fido_transport::client::{Authenticator, GetAssertionArgs, MakeCredentialArgs};
use fido_transport::softkey::{SoftConfig, SoftTransport};
use fido_transport::Error;

use super::{rp, soft_key, user, PIN, RP};

/// `n` credential ids of other authenticators (64 bytes each, as Windows Hello and
/// many keys make them).
fn foreign_ids(n: u8) -> Vec<CredentialDescriptor> {
    (0..n)
        .map(|i| CredentialDescriptor::public_key(vec![0xA0 ^ i; 64]))
        .collect()
}

fn register(
    key: &mut Authenticator<SoftTransport>,
    id: u8,
    exclude: Vec<CredentialDescriptor>,
) -> Result<Vec<u8>, Error> {
    let token = key.pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))?;
    let mut args = MakeCredentialArgs::new([id; 32], rp(), user(id));
    args.exclude_list = exclude;
    Ok(key
        .make_credential(&args, Some(&token), &mut |_| {})?
        .credential_id)
}

#[test]
fn twelve_passkeys_on_a_key_with_a_limit_of_eight() {
    let (mut key, _t, _c) = soft_key(SoftConfig::default());
    assert_eq!(key.info().unwrap().max_credential_count_in_list, Some(8));
    key.set_pin(PIN).unwrap();
    // The user's 12 existing passkeys live elsewhere: issuance succeeds.
    let before = key.stats().round_trips;
    register(&mut key, 1, foreign_ids(12)).expect("issued despite 12 excluded credentials");
    // getPinToken (3 round trips) aside: two pre-flight chunks (8 + 4), then makeCredential.
    assert!(key.stats().round_trips - before >= 3);
}

#[test]
fn an_excluded_credential_in_the_second_chunk_is_still_found() {
    let (mut key, _t, _c) = soft_key(SoftConfig::default());
    key.set_pin(PIN).unwrap();
    let existing = register(&mut key, 1, Vec::new()).unwrap();
    let mut list = foreign_ids(11);
    list.insert(10, CredentialDescriptor::public_key(existing));
    let e = register(&mut key, 2, list).unwrap_err();
    assert!(
        matches!(e, Error::Ctap(CtapStatus::CredentialExcluded)),
        "{e}"
    );
}

#[test]
fn a_five_credential_limit_splits_into_chunks_of_five() {
    let (mut key, _t, _c) = soft_key(SoftConfig {
        max_credential_count_in_list: 5,
        ..SoftConfig::default()
    });
    key.set_pin(PIN).unwrap();
    let existing = register(&mut key, 1, Vec::new()).unwrap();
    register(&mut key, 2, foreign_ids(12)).expect("no match in 3 chunks");
    let mut list = foreign_ids(12);
    list.push(CredentialDescriptor::public_key(existing));
    assert!(matches!(
        register(&mut key, 3, list).unwrap_err(),
        Error::Ctap(CtapStatus::CredentialExcluded)
    ));
}

#[test]
fn ids_longer_than_the_key_accepts_are_dropped() {
    // The YubiKey-like key refuses a list holding an id over 128 bytes (INVALID_LENGTH).
    let (mut key, _t, _c) = soft_key(SoftConfig::yubikey_like());
    key.set_pin(PIN).unwrap();
    let mut list = foreign_ids(3);
    list.push(CredentialDescriptor::public_key(vec![7; 200]));
    register(&mut key, 1, list).expect("the 200-byte id is dropped, not sent");
}

#[test]
fn chunks_shrink_to_fit_max_msg_size() {
    // 8 ids of 64 bytes make a ~600-byte pre-flight; the key takes 300 bytes at most.
    let (mut key, _t, _c) = soft_key(SoftConfig {
        max_msg_size: 300,
        ..SoftConfig::default()
    });
    key.set_pin(PIN).unwrap();
    let existing = register(&mut key, 1, Vec::new()).unwrap();
    let mut list = foreign_ids(12);
    list.insert(9, CredentialDescriptor::public_key(existing));
    assert!(matches!(
        register(&mut key, 2, list).unwrap_err(),
        Error::Ctap(CtapStatus::CredentialExcluded)
    ));
}

#[test]
fn long_allow_lists_are_pre_flighted_too() {
    let (mut key, _t, _c) = soft_key(SoftConfig::default());
    key.set_pin(PIN).unwrap();
    let existing = register(&mut key, 1, Vec::new()).unwrap();
    let mut args = GetAssertionArgs::new(RP, [5; 32]);
    args.allow_list = foreign_ids(12);
    assert!(matches!(
        key.get_assertion(&args, None, &mut |_| {}).unwrap_err(),
        Error::Ctap(CtapStatus::NoCredentials)
    ));
    args.allow_list
        .insert(11, CredentialDescriptor::public_key(existing.clone()));
    let token = key
        .pin_token(PIN, Permissions::GET_ASSERTION, Some(RP))
        .unwrap();
    let got = key.get_assertion(&args, Some(&token), &mut |_| {}).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].credential.id, existing);
}
