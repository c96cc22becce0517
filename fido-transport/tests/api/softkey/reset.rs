//! Reset, power cycle and the user-presence policies.

use super::*;

#[test]
fn reset_only_within_window_and_with_presence() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    h.make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let cert = h.auth.attestation_certificate().to_vec();
    h.clock.advance(Duration::from_secs(11));
    assert_eq!(h.status(&Reset), Some(CtapStatus::NotAllowed));
    h.auth.power_cycle();
    h.auth.control().set_presence(UserPresence::Deny);
    assert_eq!(h.status(&Reset), Some(CtapStatus::OperationDenied));
    h.auth.control().set_presence(UserPresence::TimeOut);
    assert_eq!(h.status(&Reset), Some(CtapStatus::UserActionTimeout));
    h.auth.control().set_presence(UserPresence::Approve);
    h.clock.advance(Duration::from_secs(9));
    assert_eq!(h.status(&Reset), None);
    assert_eq!(h.info().supports_option("clientPin"), Some(false));
    assert!(h.auth.state().pin.is_none());
    assert_eq!(
        h.auth.attestation_certificate(),
        &cert[..],
        "model identity kept"
    );
}

#[test]
fn reset_forgets_credentials_and_tokens() {
    let mut h = harness();
    let mc = h.make_credential(RP, user(1, "a"), true, None).expect("mc");
    let (id, _) = credential_of(&mc);
    let nr = h
        .make_credential(RP, user(2, "b"), false, None)
        .expect("mc");
    let (nr_id, _) = credential_of(&nr);
    assert_eq!(h.status(&Reset), None);
    assert!(h.auth.state().credentials.is_empty());
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![id, nr_id]), None)),
        CtapStatus::NoCredentials,
        "even non-resident ids die with the master key"
    );
}

// ---------------------------------------------------------------------------------
// User presence policy

#[test]
fn presence_policies_deny_timeout_delay_cancel() {
    let mut h = harness();
    let control = h.auth.control();
    control.set_presence(UserPresence::Deny);
    assert_eq!(
        ctap(h.make_credential(RP, user(1, "a"), false, None)),
        CtapStatus::OperationDenied
    );
    control.set_presence(UserPresence::TimeOut);
    assert_eq!(
        ctap(h.make_credential(RP, user(1, "a"), false, None)),
        CtapStatus::UserActionTimeout
    );
    control.set_presence(UserPresence::Delay(Duration::from_millis(120)));
    let req = MakeCredential::new(
        cdh(1),
        rp(RP),
        user(1, "a"),
        vec![PublicKeyCredentialParameters::public_key(ALG_ES256)],
    );
    let mut seen = Vec::new();
    let start = std::time::Instant::now();
    let reply = h
        .auth
        .handle(&encode_request(&req), &mut |p: Progress| seen.push(p));
    assert!(start.elapsed() >= Duration::from_millis(120));
    assert_eq!(reply.first(), Some(&0x00));
    assert!(
        seen.iter()
            .filter(|p| **p == Progress::UserPresenceNeeded)
            .count()
            >= 2
    );

    struct Cancelling;
    impl Presence for Cancelling {
        fn progress(&mut self, _: Progress) {}
        fn is_cancelled(&mut self) -> bool {
            true
        }
    }
    control.set_presence(UserPresence::Delay(Duration::from_secs(30)));
    let reply = h.auth.handle(&encode_request(&req), &mut Cancelling);
    assert_eq!(reply, vec![CtapStatus::KeepaliveCancel.to_u8()]);
    assert_eq!(
        control.presence(),
        UserPresence::Delay(Duration::from_secs(30))
    );
    // up=false assertions do not ask.
    control.set_presence(UserPresence::Deny);
    let mut h2 = harness();
    let mc = h2
        .make_credential(RP, user(1, "a"), false, None)
        .expect("mc");
    let (id, _) = credential_of(&mc);
    h2.auth.control().set_presence(UserPresence::Deny);
    let mut ga = GetAssertion::new(RP, cdh(2));
    ga.allow_list = Some(vec![CredentialDescriptor::public_key(id)]);
    ga.options.up = Some(false);
    let a = h2.send(&ga).expect("silent assertion");
    assert!(!AuthenticatorData::parse(&a.auth_data)
        .expect("ad")
        .flags()
        .user_present());
}
