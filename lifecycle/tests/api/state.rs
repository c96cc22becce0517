//! The state machine's full table, the planner's steps for each operation, and properties.

use lifecycle::model::{Action, CredentialState as S};
use lifecycle::state::{
    allowed_operations, next_state, plan, KeyFacts, OnIdpFailure, Operation, PendingFact, Plan,
    RegisteredFact, Step, TransitionError, ACTIONS,
};
use lifecycle::template::{DeviceFacts, DeviceOptions, KeyTransport, TemplateError, TemplateSet};
use lifecycle::Error;
use proptest::prelude::*;

const TOML: &str = include_str!("../../templates/entra-standard.toml");
const MINUTE: u64 = 60_000;
const NOW: u64 = 1_800_000_000_000;

fn templates() -> TemplateSet {
    TemplateSet::from_toml_str(TOML).expect("example template is valid")
}

fn key() -> DeviceFacts {
    DeviceFacts {
        ctap21: true,
        extensions: vec!["minPinLength".into()],
        options: DeviceOptions {
            bio_enroll: true,
            authnr_cfg: true,
            set_min_pin_length: true,
            always_uv: true,
            always_uv_enabled: false,
            client_pin_set: false,
        },
        max_rpids_for_set_min_pin_length: Some(1),
        transport: KeyTransport::Usb,
        can_reset_in_place: false,
        min_pin_length: Some(4),
    }
}

/// The expected table, written out independently of the implementation.
fn expected(from: S, action: Action) -> Option<S> {
    let allowed: &[(S, Action, S)] = &[
        (S::Blank, Action::Issue, S::Issued),
        (S::Blank, Action::Retire, S::Retired),
        (S::Blank, Action::Unregister, S::Unregistered),
        (S::Issued, Action::Activate, S::Active),
        (S::Issued, Action::Revoke, S::Revoked),
        (S::Active, Action::Inactivate, S::Inactive),
        (S::Active, Action::Revoke, S::Revoked),
        (S::Inactive, Action::Revoke, S::Revoked),
        (S::Revoked, Action::Retire, S::Retired),
        (S::Retired, Action::Unregister, S::Unregistered),
        (S::Unregistered, Action::Issue, S::Issued),
    ];
    allowed
        .iter()
        .find(|(f, a, _)| *f == from && *a == action)
        .map(|(_, _, to)| *to)
}

#[test]
fn full_transition_table() {
    let mut allowed = 0;
    for from in S::ALL {
        for action in ACTIONS {
            let got = next_state(from, action);
            match expected(from, action) {
                Some(to) => {
                    allowed += 1;
                    assert_eq!(got, Ok(to), "{from} --{action}-->");
                }
                None => {
                    let err = got.expect_err("refused");
                    match &err {
                        TransitionError::NotAllowed {
                            state,
                            operation,
                            allowed,
                        } => {
                            assert_eq!(*state, from);
                            assert_eq!(*operation, Operation::from(action));
                            assert!(!allowed.contains(&Operation::from(action)));
                            assert_eq!(*allowed, allowed_operations(from));
                        }
                        other => panic!("unexpected {other:?}"),
                    }
                    let shown = err.to_string();
                    assert!(
                        shown.starts_with(&format!("cannot {action} a key that is {from}; ")),
                        "{shown}"
                    );
                }
            }
        }
    }
    assert_eq!(allowed, 11);
}

#[test]
fn refusal_says_what_is_allowed_instead() {
    assert_eq!(
        next_state(S::Inactive, Action::Activate)
            .unwrap_err()
            .to_string(),
        "cannot activate a key that is inactive; allowed from inactive: revoke, reissue"
    );
    assert_eq!(
        next_state(S::Retired, Action::Issue)
            .unwrap_err()
            .to_string(),
        "cannot issue a key that is retired; allowed from retired: unregister"
    );
}

#[test]
fn reissue_path_is_revoke_retire_unregister_issue() {
    let mut s = S::Inactive;
    for a in [
        Action::Revoke,
        Action::Retire,
        Action::Unregister,
        Action::Issue,
    ] {
        s = next_state(s, a).unwrap();
    }
    assert_eq!(s, S::Issued);
}

// ---- planner ----

fn pending(name: &str, expires_at_ms: u64) -> PendingFact {
    PendingFact {
        passkey_template: name.into(),
        idp_connection: "contoso-entra".into(),
        expires_at_ms,
    }
}

fn registered(name: &str) -> RegisteredFact {
    RegisteredFact {
        passkey_template: name.into(),
        idp_connection: "contoso-entra".into(),
    }
}

fn issued_key(expires_at_ms: u64) -> KeyFacts {
    KeyFacts {
        pending: vec![pending("entra", expires_at_ms)],
        ..KeyFacts::new(S::Issued)
    }
}

fn active_key() -> KeyFacts {
    KeyFacts {
        registered: vec![registered("entra")],
        ..KeyFacts::new(S::Active)
    }
}

fn issue_steps(expires: u64) -> Vec<Step> {
    vec![
        Step::PolicyPreflight {
            passkey_template: "entra".into(),
            idp_connection: "contoso-entra".into(),
        },
        Step::SetTransportPin,
        Step::SetMinPinLength {
            min_pin_length: Some(8),
            rp_ids: vec!["login.microsoft.com".into()],
            force_change_pin: false,
        },
        Step::EnableAlwaysUv,
        Step::EnrollFingerprints {
            min_fingerprints: 2,
            timeout_ms: 30_000,
        },
        Step::MakeCredential {
            passkey_template: "entra".into(),
            idp_connection: "contoso-entra".into(),
            rp_id: Some("login.microsoft.com".into()),
            origin: Some("https://login.microsoft.com".into()),
        },
        Step::StorePendingRegistration {
            passkey_template: "entra".into(),
            idp_connection: "contoso-entra".into(),
            expires_at_ms: expires,
        },
        Step::SetState(S::Issued),
    ]
}

#[test]
fn issue_plan_in_order() {
    let p = plan(
        Operation::Issue,
        &templates(),
        &KeyFacts::new(S::Blank),
        Some(&key()),
        NOW,
    )
    .unwrap();
    assert_eq!(
        p,
        Plan {
            operation: Operation::Issue,
            from: S::Blank,
            to: S::Issued,
            steps: issue_steps(NOW + 1440 * MINUTE),
        }
    );
}

#[test]
fn issue_with_reset_and_no_pin_length_raise() {
    let mut t = templates();
    t.credential.fido2.reset_before_issuance = true;
    t.credential.fido2.min_pin_length = Some(4);
    t.credential.fido2.min_pin_length_rp_ids.clear();
    t.credential.fido2.always_uv = false;
    t.credential.fido2.bio = None;
    let mut d = key();
    d.can_reset_in_place = true;
    d.min_pin_length = Some(6);
    let p = plan(
        Operation::Issue,
        &t,
        &KeyFacts::new(S::Blank),
        Some(&d),
        NOW,
    )
    .unwrap();
    // Reset first, before the IdP pre-flight eats the key's 5 s / 10 s window.
    assert_eq!(p.steps[0], Step::ResetAuthenticator);
    assert!(matches!(p.steps[1], Step::PolicyPreflight { .. }));
    assert_eq!(p.steps[2], Step::SetTransportPin);
    // After a reset the template's minimum is sent even if the old key had a higher one.
    assert_eq!(
        p.steps[3],
        Step::SetMinPinLength {
            min_pin_length: Some(4),
            rp_ids: vec![],
            force_change_pin: false
        }
    );
    // Without reset a minimum below the key's current one is not sent (it cannot be lowered).
    t.credential.fido2.reset_before_issuance = false;
    let p = plan(
        Operation::Issue,
        &t,
        &KeyFacts::new(S::Blank),
        Some(&d),
        NOW,
    )
    .unwrap();
    assert!(!p
        .steps
        .iter()
        .any(|s| matches!(s, Step::SetMinPinLength { .. } | Step::ResetAuthenticator)));
}

#[test]
fn issue_needs_device_facts() {
    let e = plan(
        Operation::Issue,
        &templates(),
        &KeyFacts::new(S::Blank),
        None,
        NOW,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        Error::Transition(TransitionError::DeviceFactsRequired {
            operation: Operation::Issue
        })
    ));
}

#[test]
fn issue_on_unfit_key_returns_every_problem() {
    let d = DeviceFacts::default(); // CTAP 2.0, nothing supported
    match plan(
        Operation::Issue,
        &templates(),
        &KeyFacts::new(S::Blank),
        Some(&d),
        NOW,
    ) {
        Err(Error::Template(TemplateError::Invalid(p))) => assert_eq!(p.len(), 4),
        other => panic!("expected template problems, got {other:?}"),
    }
}

#[test]
fn issue_of_active_key_is_refused() {
    let e = plan(
        Operation::Issue,
        &templates(),
        &active_key(),
        Some(&key()),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(
        e,
        Error::Transition(TransitionError::NotAllowed {
            state: S::Active,
            operation: Operation::Issue,
            ..
        })
    ));
}

#[test]
fn issue_without_idp_update_makes_no_passkey_and_activation_makes_it() {
    let mut t = templates();
    t.credential.lifecycle.update_idp_on_issue = false;
    let p = plan(
        Operation::Issue,
        &t,
        &KeyFacts::new(S::Blank),
        Some(&key()),
        NOW,
    )
    .unwrap();
    assert!(!p.steps.iter().any(|s| matches!(
        s,
        Step::MakeCredential { .. } | Step::PolicyPreflight { .. }
    )));
    let p = plan(
        Operation::Activate,
        &t,
        &KeyFacts::new(S::Issued),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(p.steps.len(), 5);
    assert_eq!(p.steps[0], Step::ChangePin);
    assert!(matches!(p.steps[1], Step::MakeCredential { .. }));
    assert!(matches!(
        p.steps[3],
        Step::RegisterPending { ref passkey_template, .. } if passkey_template == "entra"
    ));
    assert_eq!(p.steps[4], Step::SetState(S::Active));
}

#[test]
fn auto_initiate_runs_activation_after_issue() {
    let mut t = templates();
    t.credential.lifecycle.auto_initiate_after_issuance = true;
    let p = plan(
        Operation::Issue,
        &t,
        &KeyFacts::new(S::Blank),
        Some(&key()),
        NOW,
    )
    .unwrap();
    assert_eq!(p.to, S::Active);
    let mut want = issue_steps(NOW + 1440 * MINUTE);
    want.extend([
        Step::ChangePin,
        Step::RegisterPending {
            passkey_template: "entra".into(),
            idp_connection: "contoso-entra".into(),
        },
        Step::SetState(S::Active),
    ]);
    assert_eq!(p.steps, want);
}

#[test]
fn activate_registers_pending() {
    let expires = NOW + 5 * MINUTE;
    let p = plan(
        Operation::Activate,
        &templates(),
        &issued_key(expires),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        p.steps,
        vec![
            Step::ChangePin,
            Step::RegisterPending {
                passkey_template: "entra".into(),
                idp_connection: "contoso-entra".into()
            },
            Step::SetState(S::Active),
        ]
    );
}

#[test]
fn challenge_expiry_boundary() {
    let expires = NOW;
    let t = templates();
    // One millisecond before: fine.
    assert!(plan(
        Operation::Activate,
        &t,
        &issued_key(expires),
        None,
        expires - 1
    )
    .is_ok());
    // Exactly at expiry and one millisecond after: expired.
    for now in [expires, expires + 1] {
        let e = plan(Operation::Activate, &t, &issued_key(expires), None, now).unwrap_err();
        assert_eq!(
            e.to_string(),
            format!("challenge expired for passkey template entra (expired at {expires} ms, now {now} ms): reissue the key")
        );
        assert!(matches!(
            e,
            Error::Transition(TransitionError::ChallengeExpired { ref passkey_template, expired_at_ms, now_ms })
                if passkey_template == "entra" && expired_at_ms == expires && now_ms == now
        ));
    }
}

#[test]
fn expiry_is_not_checked_when_initiate_does_not_update_idp() {
    let mut t = templates();
    t.credential.lifecycle.update_idp_on_initiate = false;
    let p = plan(Operation::Activate, &t, &issued_key(NOW), None, NOW + 1).unwrap();
    assert_eq!(p.steps, vec![Step::ChangePin, Step::SetState(S::Active)]);
}

#[test]
fn key_needing_reissue_is_not_activated() {
    let mut k = issued_key(NOW + MINUTE);
    k.needs_reissue = true;
    let e = plan(Operation::Activate, &templates(), &k, None, NOW).unwrap_err();
    assert!(matches!(
        e,
        Error::Transition(TransitionError::NeedsReissue)
    ));
}

#[test]
fn revoke_with_forced_deletion_cancels_on_failure() {
    let p = plan(Operation::Revoke, &templates(), &active_key(), None, NOW).unwrap();
    assert_eq!(
        p.steps,
        vec![
            Step::DeletePasskeyAtIdp {
                passkey_template: "entra".into(),
                idp_connection: "contoso-entra".into(),
                on_failure: OnIdpFailure::CancelOperation
            },
            Step::SetState(S::Revoked),
        ]
    );
}

#[test]
fn revoke_without_forced_deletion_retries() {
    let mut t = templates();
    t.credential.lifecycle.force_idp_deletion_on_revoke = false;
    let p = plan(Operation::Revoke, &t, &active_key(), None, NOW).unwrap();
    assert!(matches!(
        p.steps[0],
        Step::DeletePasskeyAtIdp {
            on_failure: OnIdpFailure::RetryDurably,
            ..
        }
    ));
    t.credential.lifecycle.update_idp_on_revoke = false;
    let p = plan(Operation::Revoke, &t, &active_key(), None, NOW).unwrap();
    assert_eq!(p.steps, vec![Step::SetState(S::Revoked)]);
}

#[test]
fn revoke_of_issued_key_drops_pending() {
    let p = plan(Operation::Revoke, &templates(), &issued_key(NOW), None, NOW).unwrap();
    assert_eq!(
        p.steps,
        vec![
            Step::DropPendingRegistration {
                passkey_template: "entra".into(),
                idp_connection: "contoso-entra".into()
            },
            Step::SetState(S::Revoked),
        ]
    );
}

#[test]
fn inactivate_deletes_at_idp_unless_switched_off() {
    let mut t = templates();
    let p = plan(Operation::Inactivate, &t, &active_key(), None, NOW).unwrap();
    assert_eq!(
        p.steps,
        vec![
            Step::DeletePasskeyAtIdp {
                passkey_template: "entra".into(),
                idp_connection: "contoso-entra".into(),
                on_failure: OnIdpFailure::RetryDurably
            },
            Step::SetState(S::Inactive),
        ]
    );
    t.credential.lifecycle.update_idp_on_inactivate = false;
    let p = plan(Operation::Inactivate, &t, &active_key(), None, NOW).unwrap();
    assert_eq!(p.steps, vec![Step::SetState(S::Inactive)]);
}

#[test]
fn retire_and_unregister() {
    let t = templates();
    let p = plan(Operation::Retire, &t, &KeyFacts::new(S::Revoked), None, NOW).unwrap();
    assert_eq!(p.steps, vec![Step::SetState(S::Retired)]);
    let p = plan(
        Operation::Unregister,
        &t,
        &KeyFacts::new(S::Retired),
        None,
        NOW,
    )
    .unwrap();
    assert_eq!(
        p.steps,
        vec![Step::ForgetKey, Step::SetState(S::Unregistered)]
    );
}

#[test]
fn reissue_of_inactive_key_is_the_composite_path() {
    let k = KeyFacts::new(S::Inactive);
    let p = plan(Operation::Reissue, &templates(), &k, Some(&key()), NOW).unwrap();
    assert_eq!((p.from, p.to), (S::Inactive, S::Issued));
    let mut want = vec![
        Step::SetState(S::Revoked),
        Step::SetState(S::Retired),
        Step::ForgetKey,
        Step::SetState(S::Unregistered),
    ];
    want.extend(issue_steps(NOW + 1440 * MINUTE));
    assert_eq!(p.steps, want);
}

#[test]
fn reissue_of_issued_key_with_expired_challenge() {
    let mut k = issued_key(NOW - 1);
    k.needs_reissue = true;
    let p = plan(Operation::Reissue, &templates(), &k, Some(&key()), NOW).unwrap();
    assert_eq!(
        p.steps[..2],
        [
            Step::DropPendingRegistration {
                passkey_template: "entra".into(),
                idp_connection: "contoso-entra".into()
            },
            Step::SetState(S::Revoked),
        ]
    );
    assert_eq!(p.to, S::Issued);
}

#[test]
fn reissue_refused_from_blank_and_on_unfit_key_before_any_step() {
    let e = plan(
        Operation::Reissue,
        &templates(),
        &KeyFacts::new(S::Blank),
        Some(&key()),
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot reissue a key that is blank; allowed from blank: issue, retire, unregister"
    );
    let e = plan(
        Operation::Reissue,
        &templates(),
        &active_key(),
        Some(&DeviceFacts::default()),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(e, Error::Template(_)));
}

// ---- properties ----

fn action() -> impl Strategy<Value = Action> {
    proptest::sample::select(ACTIONS.to_vec())
}

fn operation() -> impl Strategy<Value = Operation> {
    prop_oneof![action().prop_map(Operation::from), Just(Operation::Reissue)]
}

fn state() -> impl Strategy<Value = S> {
    proptest::sample::select(S::ALL.to_vec())
}

fn key_facts() -> impl Strategy<Value = KeyFacts> {
    (
        state(),
        any::<bool>(),
        proptest::collection::vec(("[a-z]{1,6}", any::<u64>()), 0..3),
        proptest::collection::vec("[a-z]{1,6}", 0..3),
    )
        .prop_map(|(state, needs_reissue, pend, reg)| KeyFacts {
            state,
            needs_reissue,
            pending: pend.into_iter().map(|(n, e)| pending(&n, e)).collect(),
            registered: reg.iter().map(|n| registered(n)).collect(),
        })
}

fn device_facts() -> impl Strategy<Value = Option<DeviceFacts>> {
    proptest::option::of(
        (
            any::<[bool; 8]>(),
            proptest::option::of(0u32..4),
            proptest::option::of(0u32..70),
        )
            .prop_map(|(b, max, min)| DeviceFacts {
                ctap21: b[0],
                extensions: if b[1] {
                    vec!["minPinLength".into()]
                } else {
                    vec![]
                },
                options: DeviceOptions {
                    bio_enroll: b[2],
                    authnr_cfg: b[3],
                    set_min_pin_length: b[4],
                    always_uv: b[5],
                    always_uv_enabled: b[5] && b[6],
                    client_pin_set: b[6],
                },
                max_rpids_for_set_min_pin_length: max,
                transport: if b[7] {
                    KeyTransport::Nfc
                } else {
                    KeyTransport::Usb
                },
                can_reset_in_place: b[7],
                min_pin_length: min,
            }),
    )
}

fn template_variant() -> impl Strategy<Value = TemplateSet> {
    (any::<[bool; 8]>(), proptest::option::of(-10i64..50_000)).prop_map(|(b, timeout)| {
        let mut t = templates();
        let l = &mut t.credential.lifecycle;
        l.update_idp_on_issue = b[0];
        l.update_idp_on_initiate = b[1];
        l.update_idp_on_inactivate = b[2];
        l.update_idp_on_revoke = b[3];
        l.force_idp_deletion_on_revoke = b[4];
        l.auto_initiate_after_issuance = b[5];
        t.credential.fido2.reset_before_issuance = b[6];
        t.credential.fido2.always_uv = b[7];
        if let Some(p) = t.passkey.get_mut("entra") {
            p.challenge_timeout_minutes = timeout;
        }
        t
    })
}

proptest! {
    #[test]
    fn random_action_sequences_stay_in_the_table(actions in proptest::collection::vec(action(), 0..40)) {
        let mut s = S::Blank;
        for a in actions {
            match next_state(s, a) {
                Ok(to) => {
                    prop_assert_eq!(Some(to), expected(s, a));
                    prop_assert!(S::ALL.contains(&to));
                    s = to;
                }
                Err(TransitionError::NotAllowed { state, .. }) => {
                    prop_assert_eq!(expected(s, a), None);
                    prop_assert_eq!(state, s);
                }
                Err(other) => prop_assert!(false, "unexpected {:?}", other),
            }
        }
    }

    #[test]
    fn plan_is_deterministic_and_consistent(
        any_op in operation(),
        pick_allowed in any::<bool>(),
        pick in any::<proptest::sample::Index>(),
        t in template_variant(),
        k in key_facts(),
        d in device_facts(),
        now in any::<u64>(),
    ) {
        // Half the cases ask for an operation the state allows, so plans get built too.
        let allowed = allowed_operations(k.state);
        let op = if pick_allowed && !allowed.is_empty() {
            allowed[pick.index(allowed.len())]
        } else {
            any_op
        };
        let a = plan(op, &t, &k, d.as_ref(), now);
        let b = plan(op, &t, &k, d.as_ref(), now);
        prop_assert_eq!(format!("{a:?}"), format!("{b:?}"));
        if let Ok(p) = a {
            prop_assert_eq!(p.from, k.state);
            prop_assert_eq!(p.steps.last(), Some(&Step::SetState(p.to)));
            // Every recorded state change follows the table from the starting state.
            let mut s = k.state;
            for step in &p.steps {
                if let Step::SetState(to) = step {
                    let via = ACTIONS.iter().find(|a| expected(s, **a) == Some(*to));
                    prop_assert!(via.is_some(), "{} -> {} is not in the table", s, to);
                    s = *to;
                }
            }
            prop_assert_eq!(s, p.to);
        }
    }
}

#[test]
fn decision_types_are_send_sync_and_owned() {
    fn check<T: Send + Sync + 'static>() {}
    check::<TemplateSet>();
    check::<DeviceFacts>();
    check::<KeyFacts>();
    check::<Plan>();
    check::<TransitionError>();
    check::<TemplateError>();
}

#[test]
fn always_uv_already_on_is_not_toggled_off() {
    let mut d = key();
    d.options.always_uv_enabled = true;
    let p = plan(
        Operation::Issue,
        &templates(),
        &KeyFacts::new(S::Blank),
        Some(&d),
        NOW,
    )
    .unwrap();
    assert!(!p.steps.contains(&Step::EnableAlwaysUv));
    // After a reset the option's state is unknown, so the step (read, then toggle if off) stays.
    let mut t = templates();
    t.credential.fido2.reset_before_issuance = true;
    d.can_reset_in_place = true;
    let p = plan(
        Operation::Issue,
        &t,
        &KeyFacts::new(S::Blank),
        Some(&d),
        NOW,
    )
    .unwrap();
    assert!(p.steps.contains(&Step::EnableAlwaysUv));
}

#[test]
fn platform_only_stations_refuse_raw_ctap_steps_up_front() {
    let p = plan(
        Operation::Issue,
        &templates(),
        &KeyFacts::new(S::Blank),
        Some(&key()),
        NOW,
    )
    .unwrap();
    let e = p.check_platform_only().unwrap_err();
    let lifecycle::Error::Template(t) = &e else {
        panic!("expected a template error, got {e:?}");
    };
    // SetTransportPin, SetMinPinLength, EnableAlwaysUv, EnrollFingerprints.
    assert_eq!(t.problems().len(), 4, "{e}");
    assert!(e.to_string().contains("agent service"), "{e}");
    // Activation with only IdP steps and the holder's changePIN still needs raw CTAP
    // for changePIN; a plan of IdP steps alone passes.
    let ok = Plan {
        operation: Operation::Inactivate,
        from: S::Active,
        to: S::Inactive,
        steps: vec![Step::SetState(S::Inactive)],
    };
    assert!(ok.check_platform_only().is_ok());
    assert!(!Step::MakeCredential {
        passkey_template: "entra".into(),
        idp_connection: "contoso-entra".into(),
        rp_id: None,
        origin: None,
    }
    .needs_raw_ctap());
}
