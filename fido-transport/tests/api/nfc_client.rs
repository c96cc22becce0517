//! The blocking `Authenticator` client over NFC through a REAL pcscd with vsmartcard's
//! vpcd reader driver, the software authenticator being the card: every client
//! operation of the `client` module, in three reader/card personalities (extended APDUs,
//! short APDUs only with command chaining, and a card that answers 61xx and 9100).
//!
//! Path of every request: `Authenticator` -> `NfcTransport` -> libpcsclite -> pcscd ->
//! vpcd -> TCP -> in-process virtual card (`VpcdCardHandle`) -> `SoftAuthenticator`.
//!
//! Start the rig first: `scripts/pcsc-rig-start.sh` (as root). Without the rig (no env
//! file, or pcscd not reachable) the tests print a skip note and pass, except when the
//! environment variable `CI` is set: then they fail and say why. vpcd has one card
//! slot, so every test holds the lock of the card shared with `nfc` (see `rig`); each
//! test puts a fresh software key into the one card thread.

use std::ops::Deref;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use fido_core::apdu::{ApduMode, CardConfig};
use fido_core::attestation::verify_assertion;
use fido_core::authdata::rp_id_hash;
use fido_core::cbor::Value;
use fido_core::commands::{CredentialDescriptor, RpEntity, UserEntity};
use fido_core::pin::{Permissions, PinUvAuthProtocol};
use fido_core::CtapStatus;
use fido_transport::client::{Authenticator, GetAssertionArgs, MakeCredentialArgs};
use fido_transport::nfc::{CardApplet, NfcMode, NfcTransport};
use fido_transport::softkey::{
    ManualClock, SeededRng, SoftAuthenticator, SoftConfig, SoftTransport,
};
use fido_transport::{Error, Progress, Transport, TransportKind};

use super::rig::{self, SharedCard};

const PIN: &str = "4821";
const PIN2: &str = "9137";
const PIN3: &str = "135790";
const RP: &str = "login.microsoft.com";
/// UV flag of the authenticator data.
const FLAG_UV: u8 = 0x04;

// ---------------------------------------------------------------------------------
// The rig: one card thread on vpcd's slot 0 whose applet is a replaceable software key.

/// The card's applet: whichever software key the current test put in the slot.
/// Its power hook can be switched off to play a key that ignores power-ups.
#[derive(Clone, Default)]
struct KeySlot {
    key: Arc<Mutex<Option<SoftTransport>>>,
    deaf: Arc<AtomicBool>,
}

impl KeySlot {
    fn current(&self) -> Option<SoftTransport> {
        self.key
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn put(&self, key: SoftTransport) {
        *self.key.lock().unwrap_or_else(PoisonError::into_inner) = Some(key);
        self.set_power_hook(true);
    }

    fn set_power_hook(&self, on: bool) {
        self.deaf.store(!on, Ordering::SeqCst);
    }
}

impl CardApplet for KeySlot {
    fn ctap(&mut self, request: &[u8]) -> Vec<u8> {
        match self.current() {
            Some(mut key) => CardApplet::ctap(&mut key, request),
            None => vec![0x01], // CTAP1_ERR_INVALID_COMMAND: no key inserted yet
        }
    }

    fn power_cycle(&mut self) {
        if self.deaf.load(Ordering::SeqCst) {
            return;
        }
        if let Some(mut key) = self.current() {
            CardApplet::power_cycle(&mut key);
        }
    }
}

/// The shared card running a [`KeySlot`], locked for this test.
struct Rig {
    shared: MutexGuard<'static, SharedCard>,
    slot: KeySlot,
}

impl Deref for Rig {
    type Target = SharedCard;

    fn deref(&self) -> &SharedCard {
        &self.shared
    }
}

/// The rig, locked for this test; `None` (after a note) when it is not running
/// outside CI.
fn rig() -> Option<Rig> {
    let slot = KeySlot::default();
    let shared = rig::lock_card(slot.clone())?;
    Some(Rig { shared, slot })
}

type NfcKey = Authenticator<NfcTransport>;

/// A fresh software key in the card slot, as the test sees it.
struct Card {
    key: SoftTransport,
    clock: ManualClock,
}

impl Rig {
    /// Puts a fresh software key of `config` into a fresh card of `personality` and
    /// connects a client to it through pcscd in `mode`.
    fn insert(
        &self,
        config: SoftConfig,
        personality: &CardConfig,
        mode: NfcMode,
        seed: u64,
    ) -> (NfcKey, Card) {
        let clock = ManualClock::new();
        let soft =
            SoftAuthenticator::with_rng_and_clock(config, SeededRng::new(seed), clock.clone())
                .unwrap_or_else(|e| panic!("software key: {e}"));
        let key = SoftTransport::new(soft);
        self.slot.put(key.clone());
        self.card.set_config(personality.clone());
        let mut transport = self.connect(mode);
        transport.set_poll_interval(Duration::from_millis(20));
        assert_eq!(transport.kind(), TransportKind::Nfc);
        assert!(transport.describe().contains(&self.reader));
        (Authenticator::new(transport), Card { key, clock })
    }
}

// ---------------------------------------------------------------------------------
// Helpers

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

/// The progress a personality must report for an operation that reaches the key: the
/// quirky card sends two UserPresenceNeeded status updates (9100) before every answer,
/// the others none (the software key itself approves presence silently on NFC).
fn expected_progress(personality: &CardConfig) -> Vec<Progress> {
    if *personality == CardConfig::quirky() {
        vec![Progress::UserPresenceNeeded; 2]
    } else {
        Vec::new()
    }
}

fn expected_apdu_mode(personality: &CardConfig, mode: NfcMode) -> ApduMode {
    if *personality == CardConfig::short_only() || mode == NfcMode::Short {
        ApduMode::Short
    } else {
        ApduMode::Extended
    }
}

// ---------------------------------------------------------------------------------
// The whole client life cycle on one key, per personality and mode.

/// getInfo, PIN set/change (wrong PIN counted), protocol-2 tokens with permissions,
/// authenticatorConfig (alwaysUv, minPinLength with RP ids and a forced change),
/// makeCredential rk+uv with the attestation verified, getAssertion with the
/// signature verified, credential management, large blobs, and a reset after the
/// power-up window that the client gets through by power-cycling the card over PC/SC.
fn life_cycle(rig: &Rig, personality: CardConfig, mode: NfcMode, seed: u64) {
    let what = format!("{mode} mode on {personality:?}");
    let (mut a, card) = rig.insert(SoftConfig::default(), &personality, mode, seed);
    let progress_per_call = expected_progress(&personality);

    // --- getInfo, once per session.
    let info = a.info().unwrap_or_else(|e| panic!("getInfo, {what}: {e}"));
    assert!(info.is_ctap21(), "{what}");
    assert_eq!(info.supports_option("clientPin"), Some(false), "{what}");
    assert_eq!(info.aaguid, *b"keysmith-softkey", "{what}");
    a.info().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(a.stats().round_trips, 1, "{what}");
    assert_eq!(
        a.transport().active_mode(),
        Some(expected_apdu_mode(&personality, mode)),
        "{what}"
    );

    // --- PIN: set, wrong current PIN counted, change.
    a.set_pin(PIN)
        .unwrap_or_else(|e| panic!("set_pin, {what}: {e}"));
    assert_eq!(
        a.info().ok().and_then(|i| i.supports_option("clientPin")),
        Some(true)
    );
    assert_eq!(a.pin_retries().map(|r| r.retries).ok(), Some(8), "{what}");
    let err = a.change_pin("0000", PIN2).unwrap_err();
    assert!(
        matches!(
            &err,
            Error::PinInvalid {
                retries_left: 7,
                power_cycle_required: false
            }
        ) && err.to_string().contains("7 attempt(s) left"),
        "{what}: {err}"
    );
    assert_eq!(err.ctap_status(), Some(CtapStatus::PinInvalid), "{what}");
    a.change_pin(PIN, PIN2)
        .unwrap_or_else(|e| panic!("change_pin, {what}: {e}"));
    assert_eq!(a.pin_retries().map(|r| r.retries).ok(), Some(8), "{what}");

    // --- A protocol-2 token with exactly the permissions asked for.
    let cm = a
        .pin_token(PIN2, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap_or_else(|e| panic!("pin_token, {what}: {e}"));
    assert_eq!(cm.protocol(), PinUvAuthProtocol::Two, "{what}");
    assert_eq!(
        a.credentials_metadata(&cm).map(|m| m.existing).ok(),
        Some(0),
        "{what}"
    );
    let refused = a.make_credential(
        &MakeCredentialArgs::new([1; 32], rp(), user(1, "a")),
        Some(&cm),
        &mut |_| {},
    );
    assert!(
        matches!(refused, Err(Error::InvalidArgument(_))),
        "{what}: {refused:?}"
    );

    // --- authenticatorConfig: alwaysUv on and off again.
    let acfg = a
        .pin_token(PIN2, Permissions::AUTHENTICATOR_CONFIG, None)
        .unwrap_or_else(|e| panic!("acfg token, {what}: {e}"));
    assert_eq!(
        a.set_always_uv(false, Some(&acfg)).ok(),
        Some(false),
        "{what}"
    );
    assert_eq!(
        a.set_always_uv(true, Some(&acfg)).ok(),
        Some(true),
        "{what}"
    );
    assert_eq!(
        a.info().ok().and_then(|i| i.supports_option("alwaysUv")),
        Some(true),
        "{what}"
    );
    assert!(card.key.with(|k| k.state().always_uv), "{what}");
    assert_eq!(
        a.set_always_uv(false, Some(&acfg)).ok(),
        Some(true),
        "{what}"
    );
    assert!(!card.key.with(|k| k.state().always_uv), "{what}");

    // --- setMinPINLength with RP ids and a forced PIN change.
    a.set_min_pin_length(Some(6), &[RP.to_owned()], true, Some(&acfg))
        .unwrap_or_else(|e| panic!("set_min_pin_length, {what}: {e}"));
    let info = a.info().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(info.min_pin_length, Some(6), "{what}");
    assert_eq!(info.force_pin_change, Some(true), "{what}");
    assert_eq!(
        card.key.with(|k| k.state().min_pin_length_rpids.clone()),
        vec![RP.to_owned()],
        "{what}"
    );
    let blocked = a.pin_token(PIN2, Permissions::MAKE_CREDENTIAL, Some(RP));
    assert!(
        matches!(blocked, Err(Error::Ctap(CtapStatus::PinPolicyViolation))),
        "{what}: {blocked:?}"
    );
    assert!(a.change_pin(PIN2, "12345").is_err(), "{what}: 5 < 6");
    a.change_pin(PIN2, PIN3)
        .unwrap_or_else(|e| panic!("forced change_pin, {what}: {e}"));
    assert_ne!(
        a.info().ok().and_then(|i| i.force_pin_change),
        Some(true),
        "{what}"
    );

    // --- makeCredential rk + uv; the attestation verified with fido-core.
    let mc = a
        .pin_token(PIN3, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap_or_else(|e| panic!("mc token, {what}: {e}"));
    let mut seen = Vec::new();
    let alice = a
        .make_credential(
            &MakeCredentialArgs::new([9; 32], rp(), user(1, "alice")),
            Some(&mc),
            &mut |p| seen.push(p),
        )
        .unwrap_or_else(|e| panic!("make_credential, {what}: {e}"));
    assert_eq!(seen, progress_per_call, "makeCredential progress, {what}");
    let verified = alice
        .attestation
        .verify(&[9; 32])
        .unwrap_or_else(|e| panic!("attestation, {what}: {e}"));
    assert_eq!(verified.credential_id, alice.credential_id, "{what}");
    assert_eq!(verified.public_key, alice.public_key, "{what}");
    assert_eq!(verified.aaguid, *b"keysmith-softkey", "{what}");
    assert_eq!(verified.auth_data.rp_id_hash(), &rp_id_hash(RP), "{what}");
    assert!(
        alice.attestation.auth_data().flags().bits() & FLAG_UV != 0,
        "UV flag, {what}"
    );
    let mc = a
        .pin_token(PIN3, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let bob = a
        .make_credential(
            &MakeCredentialArgs::new([8; 32], rp(), user(2, "bob")),
            Some(&mc),
            &mut |_| {},
        )
        .unwrap_or_else(|e| panic!("second make_credential, {what}: {e}"));
    assert_eq!(card.key.with(|k| k.state().credentials.len()), 2, "{what}");

    // --- getAssertion over the discoverable credentials; signatures verified.
    let ga = a
        .pin_token(PIN3, Permissions::GET_ASSERTION, Some(RP))
        .unwrap_or_else(|e| panic!("ga token, {what}: {e}"));
    let cdh = [4; 32];
    let mut seen = Vec::new();
    let out = a
        .get_assertion(&GetAssertionArgs::new(RP, cdh), Some(&ga), &mut |p| {
            seen.push(p)
        })
        .unwrap_or_else(|e| panic!("get_assertion, {what}: {e}"));
    // getAssertion, then getNextAssertion: each answered after the status updates.
    assert_eq!(
        seen,
        progress_per_call.repeat(2),
        "getAssertion progress, {what}"
    );
    assert_eq!(out.len(), 2, "{what}");
    for (made, name) in [(&alice, "alice"), (&bob, "bob")] {
        let signed = out
            .iter()
            .find(|x| x.credential.id == made.credential_id)
            .unwrap_or_else(|| panic!("no assertion by {name}, {what}"));
        verify_assertion(
            &made.public_key,
            &signed.auth_data_bytes,
            &cdh,
            &signed.signature,
        )
        .unwrap_or_else(|e| panic!("{name}'s signature, {what}: {e}"));
        assert!(
            signed.auth_data.flags().bits() & FLAG_UV != 0,
            "UV flag, {what}"
        );
        assert_eq!(
            signed.user.as_ref().and_then(|u| u.name.as_deref()),
            Some(name),
            "{what}"
        );
    }
    // Alice's signature does not verify with Bob's key.
    let by_alice = out
        .iter()
        .find(|x| x.credential.id == alice.credential_id)
        .unwrap_or_else(|| panic!("{what}"));
    assert!(
        verify_assertion(
            &bob.public_key,
            &by_alice.auth_data_bytes,
            &cdh,
            &by_alice.signature
        )
        .is_err(),
        "{what}"
    );
    // Allow list with one entry, no token: user presence only, no UV.
    let mut args = GetAssertionArgs::new(RP, cdh);
    args.allow_list = vec![CredentialDescriptor::public_key(
        alice.credential_id.clone(),
    )];
    let out = a
        .get_assertion(&args, None, &mut |_| {})
        .unwrap_or_else(|e| panic!("allow-list get_assertion, {what}: {e}"));
    assert_eq!(out.len(), 1, "{what}");
    assert_eq!(out[0].credential.id, alice.credential_id, "{what}");
    assert_eq!(out[0].auth_data.flags().bits() & FLAG_UV, 0, "{what}");
    verify_assertion(
        &alice.public_key,
        &out[0].auth_data_bytes,
        &cdh,
        &out[0].signature,
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));

    // --- Credential management: metadata, RPs, credentials, delete.
    let cm = a
        .pin_token(PIN3, Permissions::CREDENTIAL_MANAGEMENT, None)
        .unwrap_or_else(|e| panic!("cm token, {what}: {e}"));
    let meta = a
        .credentials_metadata(&cm)
        .unwrap_or_else(|e| panic!("metadata, {what}: {e}"));
    assert_eq!(meta.existing, 2, "{what}");
    let rps = a
        .enumerate_rps(&cm)
        .unwrap_or_else(|e| panic!("enumerate_rps, {what}: {e}"));
    assert_eq!(rps.len(), 1, "{what}");
    assert_eq!(rps[0].rp.id, RP, "{what}");
    assert_eq!(rps[0].rp_id_hash, rp_id_hash(RP), "{what}");
    let creds = a
        .enumerate_credentials(&cm, rp_id_hash(RP))
        .unwrap_or_else(|e| panic!("enumerate_credentials, {what}: {e}"));
    assert_eq!(creds.len(), 2, "{what}");
    let mine = creds
        .iter()
        .find(|c| c.credential_id.id == alice.credential_id)
        .unwrap_or_else(|| panic!("alice not enumerated, {what}"))
        .clone();
    assert_eq!(mine.user.name.as_deref(), Some("alice"), "{what}");
    a.delete_credential(&cm, &mine.credential_id)
        .unwrap_or_else(|e| panic!("delete_credential, {what}: {e}"));
    let meta_after = a
        .credentials_metadata(&cm)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(meta_after.existing, 1, "{what}");
    assert_eq!(meta_after.remaining, meta.remaining + 1, "{what}");
    let left = a
        .enumerate_credentials(&cm, rp_id_hash(RP))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(left.len(), 1, "{what}");
    assert_eq!(left[0].credential_id.id, bob.credential_id, "{what}");

    // --- Large blobs: a 700-byte entry (more than one short APDU) written and read.
    assert_eq!(a.read_large_blob_array().ok(), Some(Vec::new()), "{what}");
    let lbw = a
        .pin_token(PIN3, Permissions::LARGE_BLOB_WRITE, None)
        .unwrap_or_else(|e| panic!("lbw token, {what}: {e}"));
    let entry = Value::map([
        (Value::from(1u8), Value::Bytes(vec![0x5A; 700])),
        (Value::from(2u8), Value::Bytes(vec![1; 12])),
        (Value::from(3u8), Value::from(700u32)),
    ]);
    let apdus_before = rig.card.apdus();
    a.write_large_blob_array(&lbw, std::slice::from_ref(&entry))
        .unwrap_or_else(|e| panic!("write_large_blob_array, {what}: {e}"));
    let apdus = rig.card.apdus() - apdus_before;
    match expected_apdu_mode(&personality, mode) {
        // 700+ bytes in a command chain of short APDUs (255 data bytes each).
        ApduMode::Short => assert!(apdus >= 3, "{what}: {apdus} APDUs"),
        // One extended APDU (plus the quirky card's two status polls).
        _ => assert_eq!(apdus, 1 + progress_per_call.len() as u64, "{what}"),
    }
    assert!(
        card.key.with(|k| k.state().large_blob_array.len()) > 700,
        "{what}"
    );
    assert_eq!(a.read_large_blob_array().ok(), Some(vec![entry]), "{what}");

    // --- Reset after the power-up window: refused (NOT_ALLOWED), then the client
    // power-cycles the card through PC/SC (the applet sees the power-up and opens
    // its window again) and the retry goes through.
    card.clock.advance(Duration::from_secs(11));
    let powered_before = rig.card.power_ups();
    let mut seen = Vec::new();
    a.reset(&mut |p| seen.push(p))
        .unwrap_or_else(|e| panic!("reset, {what}: {e}"));
    assert!(
        rig.card.power_ups() > powered_before,
        "no power cycle, {what}"
    );
    if personality == CardConfig::quirky() {
        // Two status updates for the refused reset and two for the retry.
        assert_eq!(seen, vec![Progress::UserPresenceNeeded; 4], "{what}");
    } else {
        assert!(seen.is_empty(), "{what}: {seen:?}");
    }
    assert_eq!(
        a.info().ok().and_then(|i| i.supports_option("clientPin")),
        Some(false),
        "{what}"
    );
    card.key.with(|k| {
        assert!(k.state().pin.is_none(), "{what}");
        assert!(k.state().credentials.is_empty(), "{what}");
    });
    assert_eq!(
        a.transport().active_mode(),
        Some(expected_apdu_mode(&personality, mode)),
        "{what}"
    );
}

#[test]
fn extended_card_in_auto_mode_runs_every_client_operation() {
    let Some(rig) = rig() else { return };
    life_cycle(&rig, CardConfig::extended(), NfcMode::Auto, 11);
}

#[test]
fn short_only_card_in_auto_mode_runs_every_client_operation() {
    let Some(rig) = rig() else { return };
    life_cycle(&rig, CardConfig::short_only(), NfcMode::Auto, 12);
}

#[test]
fn short_only_card_in_short_mode_runs_every_client_operation() {
    let Some(rig) = rig() else { return };
    life_cycle(&rig, CardConfig::short_only(), NfcMode::Short, 13);
}

#[test]
fn quirky_card_in_auto_mode_runs_every_client_operation() {
    let Some(rig) = rig() else { return };
    life_cycle(&rig, CardConfig::quirky(), NfcMode::Auto, 14);
}

// ---------------------------------------------------------------------------------
// PIN protocol one, wrong PINs, reset refused for good.

#[test]
fn ctap20_key_gets_a_protocol_one_token_on_every_personality() {
    let Some(rig) = rig() else { return };
    for (i, personality) in [
        CardConfig::extended(),
        CardConfig::short_only(),
        CardConfig::quirky(),
    ]
    .into_iter()
    .enumerate()
    {
        let what = format!("{personality:?}");
        let (mut a, _card) = rig.insert(
            SoftConfig::ctap20(),
            &personality,
            NfcMode::Auto,
            20 + i as u64,
        );
        a.set_pin(PIN)
            .unwrap_or_else(|e| panic!("set_pin, {what}: {e}"));
        assert_eq!(
            a.pin_protocol().ok(),
            Some(PinUvAuthProtocol::One),
            "{what}"
        );
        let t = a
            .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
            .unwrap_or_else(|e| panic!("pin_token, {what}: {e}"));
        assert_eq!(t.protocol(), PinUvAuthProtocol::One, "{what}");
        let made = a
            .make_credential(
                &MakeCredentialArgs::new([3; 32], rp(), user(3, "carol")),
                Some(&t),
                &mut |_| {},
            )
            .unwrap_or_else(|e| panic!("make_credential, {what}: {e}"));
        made.attestation
            .verify(&[3; 32])
            .unwrap_or_else(|e| panic!("attestation, {what}: {e}"));
        assert!(
            made.attestation.auth_data().flags().bits() & FLAG_UV != 0,
            "UV flag, {what}"
        );
        let t = a
            .pin_token(PIN, Permissions::GET_ASSERTION, Some(RP))
            .unwrap_or_else(|e| panic!("pin_token, {what}: {e}"));
        assert_eq!(t.protocol(), PinUvAuthProtocol::One, "{what}");
        let out = a
            .get_assertion(&GetAssertionArgs::new(RP, [5; 32]), Some(&t), &mut |_| {})
            .unwrap_or_else(|e| panic!("get_assertion, {what}: {e}"));
        assert_eq!(out.len(), 1, "{what}");
        verify_assertion(
            &made.public_key,
            &out[0].auth_data_bytes,
            &[5; 32],
            &out[0].signature,
        )
        .unwrap_or_else(|e| panic!("signature, {what}: {e}"));
        // No credential management on a 2.0 key.
        assert!(
            matches!(a.credentials_metadata(&t), Err(Error::Unsupported(_))),
            "{what}"
        );
        // A wrong PIN over protocol one is counted too.
        let err = a
            .pin_token("0000", Permissions::MAKE_CREDENTIAL, Some(RP))
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::PinInvalid {
                    retries_left: 7,
                    ..
                }
            ),
            "{what}: {err}"
        );
    }
}

#[test]
fn three_wrong_pins_are_cleared_by_a_card_power_cycle() {
    let Some(rig) = rig() else { return };
    let (mut a, _card) = rig.insert(
        SoftConfig::default(),
        &CardConfig::short_only(),
        NfcMode::Short,
        30,
    );
    a.set_pin(PIN).unwrap_or_else(|e| panic!("set_pin: {e}"));
    for _ in 0..3 {
        assert!(a
            .pin_token("0000", Permissions::MAKE_CREDENTIAL, Some(RP))
            .is_err());
    }
    let r = a.pin_retries().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.retries, 5);
    assert!(r.power_cycle_required);
    let err = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap_err();
    assert!(
        matches!(err, Error::Ctap(CtapStatus::PinAuthBlocked)),
        "{err}"
    );
    // Over NFC the "reattach" is a power cycle through the reader.
    a.transport_mut()
        .power_cycle()
        .unwrap_or_else(|e| panic!("power_cycle: {e}"));
    let t = a
        .pin_token(PIN, Permissions::MAKE_CREDENTIAL, Some(RP))
        .unwrap_or_else(|e| panic!("pin_token after the power cycle: {e}"));
    assert_eq!(t.protocol(), PinUvAuthProtocol::Two);
    assert_eq!(a.pin_retries().map(|r| r.retries).ok(), Some(8));
}

#[test]
fn a_reset_refused_again_after_the_power_cycle_asks_to_reattach() {
    let Some(rig) = rig() else { return };
    let (mut a, card) = rig.insert(
        SoftConfig::default(),
        &CardConfig::extended(),
        NfcMode::Auto,
        40,
    );
    a.set_pin(PIN).unwrap_or_else(|e| panic!("set_pin: {e}"));
    card.clock.advance(Duration::from_secs(11));
    // A key that does not notice the power-up keeps its reset window closed: the
    // client power-cycles once, retries once, then asks for a reattach.
    rig.slot.set_power_hook(false);
    let powered_before = rig.card.power_ups();
    let result = a.reset(&mut |_| {});
    rig.slot.set_power_hook(true);
    let err = result.unwrap_err();
    assert!(matches!(err, Error::ReattachRequired), "{err}");
    assert_eq!(err.ctap_status(), Some(CtapStatus::NotAllowed));
    assert_eq!(
        rig.card.power_ups(),
        powered_before + 1,
        "exactly one power cycle"
    );
    assert!(card.key.with(|k| k.state().pin.is_some()), "nothing erased");
    // With the hook back, the next attempt goes through the same way.
    a.reset(&mut |_| {})
        .unwrap_or_else(|e| panic!("reset: {e}"));
    assert!(card.key.with(|k| k.state().pin.is_none()));
}
