//! Credential management: enumerate, update, delete, RP-bound tokens, a full store.

use super::*;

fn cm(sub: CredMgmtSubCommand, token: Option<&PinUvAuthToken>) -> CredentialManagement {
    let mut c = CredentialManagement::new(sub);
    if let Some(t) = token {
        c.pin_uv_auth_protocol = Some(t.protocol().id());
        c.pin_uv_auth_param = Some(t.authenticate(&c.pin_uv_auth_message()));
    }
    c
}

#[test]
fn credential_management_enumerate_update_delete() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    let mk = h
        .token(2, "1234", Some(Permissions::MAKE_CREDENTIAL), Some(RP))
        .expect("token");
    let a = h
        .make_credential(RP, user(1, "alice"), true, Some(&mk))
        .expect("mc");
    h.make_credential(RP, user(2, "bob"), true, Some(&mk))
        .expect("mc");
    let mk2 = h
        .token(
            2,
            "1234",
            Some(Permissions::MAKE_CREDENTIAL),
            Some("other.example"),
        )
        .expect("token");
    h.make_credential("other.example", user(3, "carol"), true, Some(&mk2))
        .expect("mc");
    let (alice_id, alice_key) = credential_of(&a);

    // Without a token, or with a token lacking cm.
    assert_eq!(
        h.status(&cm(CredMgmtSubCommand::GetCredsMetadata, None)),
        Some(CtapStatus::PuatRequired)
    );
    assert_eq!(
        h.status(&cm(CredMgmtSubCommand::GetCredsMetadata, Some(&mk2))),
        Some(CtapStatus::PinAuthInvalid)
    );
    let t = h
        .token(2, "1234", Some(Permissions::CREDENTIAL_MANAGEMENT), None)
        .expect("cm token");
    let meta = h
        .send(&cm(CredMgmtSubCommand::GetCredsMetadata, Some(&t)))
        .expect("metadata");
    assert_eq!(meta.existing_resident_credentials_count, Some(3));
    assert_eq!(
        meta.max_possible_remaining_resident_credentials_count,
        Some(22)
    );

    let first = h
        .send(&cm(CredMgmtSubCommand::EnumerateRpsBegin, Some(&t)))
        .expect("rps");
    assert_eq!(first.total_rps, Some(2));
    let next = h
        .send(&cm(CredMgmtSubCommand::EnumerateRpsGetNextRp, None))
        .expect("next rp");
    let mut ids = vec![
        first.rp.expect("rp").id,
        next.rp.as_ref().expect("rp").id.clone(),
    ];
    ids.sort();
    assert_eq!(ids, vec![RP.to_owned(), "other.example".to_owned()]);
    assert_eq!(
        next.rp_id_hash,
        Some(fido_core::authdata::rp_id_hash(&next.rp.expect("rp").id))
    );
    assert_eq!(
        h.status(&cm(CredMgmtSubCommand::EnumerateRpsGetNextRp, None)),
        Some(CtapStatus::NotAllowed)
    );

    let begin = CredMgmtSubCommand::EnumerateCredentialsBegin {
        rp_id_hash: fido_core::authdata::rp_id_hash(RP),
    };
    let c1 = h.send(&cm(begin.clone(), Some(&t))).expect("creds");
    assert_eq!(c1.total_credentials, Some(2));
    assert_eq!(c1.cred_protect, Some(1));
    // The enumeration state is invalidated by any other command.
    h.info();
    assert_eq!(
        h.status(&cm(
            CredMgmtSubCommand::EnumerateCredentialsGetNextCredential,
            None
        )),
        Some(CtapStatus::NotAllowed)
    );
    let c1 = h.send(&cm(begin.clone(), Some(&t))).expect("creds");
    let c2 = h
        .send(&cm(
            CredMgmtSubCommand::EnumerateCredentialsGetNextCredential,
            None,
        ))
        .expect("next cred");
    let both = [c1, c2];
    let alice = both
        .iter()
        .find(|c| c.user.as_ref().map(|u| u.id.clone()) == Some(vec![1; 16]))
        .expect("alice listed");
    assert_eq!(
        alice.credential_id.as_ref().map(|d| d.id.clone()),
        Some(alice_id.clone())
    );
    assert_eq!(alice.public_key.as_ref(), Some(&alice_key));

    // Update: user id must match.
    let wrong = CredMgmtSubCommand::UpdateUserInformation {
        credential_id: CredentialDescriptor::public_key(alice_id.clone()),
        user: user(9, "mallory"),
    };
    assert_eq!(
        h.status(&cm(wrong, Some(&t))),
        Some(CtapStatus::InvalidParameter)
    );
    let update = CredMgmtSubCommand::UpdateUserInformation {
        credential_id: CredentialDescriptor::public_key(alice_id.clone()),
        user: UserEntity {
            id: vec![1; 16],
            name: Some("alice2".into()),
            display_name: None,
        },
    };
    assert_eq!(h.status(&cm(update, Some(&t))), None);
    let stored = h
        .auth
        .state()
        .credentials
        .iter()
        .find(|c| c.id == alice_id)
        .expect("still there")
        .clone();
    assert_eq!(stored.user_name.as_deref(), Some("alice2"));
    assert_eq!(stored.user_display_name, None);

    // Delete, then it is gone for assertions and for a second delete.
    let del = CredMgmtSubCommand::DeleteCredential {
        credential_id: CredentialDescriptor::public_key(alice_id.clone()),
    };
    assert_eq!(h.status(&cm(del.clone(), Some(&t))), None);
    assert_eq!(
        h.status(&cm(del, Some(&t))),
        Some(CtapStatus::NoCredentials)
    );
    assert_eq!(
        ctap(h.get_assertion(RP, Some(vec![alice_id]), None)),
        CtapStatus::NoCredentials
    );
    assert_eq!(h.auth.state().credentials.len(), 2);
}

#[test]
fn credential_management_token_bound_to_rp() {
    let mut h = harness();
    assert_eq!(h.set_pin(2, "1234"), None);
    h.make_credential("other.example", user(3, "c"), false, None)
        .expect("non-rk without UV is fine");
    let t = h
        .token(
            2,
            "1234",
            Some(Permissions::CREDENTIAL_MANAGEMENT),
            Some("other.example"),
        )
        .expect("token");
    assert_eq!(
        h.status(&cm(CredMgmtSubCommand::EnumerateRpsBegin, Some(&t))),
        Some(CtapStatus::PinAuthInvalid)
    );
    assert_eq!(
        h.status(&cm(
            CredMgmtSubCommand::EnumerateCredentialsBegin {
                rp_id_hash: fido_core::authdata::rp_id_hash(RP)
            },
            Some(&t)
        )),
        Some(CtapStatus::PinAuthInvalid)
    );
    assert_eq!(
        h.status(&cm(
            CredMgmtSubCommand::EnumerateCredentialsBegin {
                rp_id_hash: fido_core::authdata::rp_id_hash("other.example")
            },
            Some(&t)
        )),
        Some(CtapStatus::NoCredentials)
    );
}

#[test]
fn key_store_full() {
    let mut h = harness_with(SoftConfig {
        max_resident_credentials: 2,
        ..SoftConfig::default()
    });
    h.make_credential(RP, user(1, "a"), true, None).expect("mc");
    h.make_credential(RP, user(2, "b"), true, None).expect("mc");
    assert_eq!(
        ctap(h.make_credential(RP, user(3, "c"), true, None)),
        CtapStatus::KeyStoreFull
    );
    // Replacing an existing user still works.
    h.make_credential(RP, user(2, "b2"), true, None)
        .expect("replace");
    assert_eq!(h.info().remaining_discoverable_credentials, Some(0));
}
