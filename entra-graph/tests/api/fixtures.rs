//! Real response shapes (after Microsoft's published examples) parsed by the client types.

use entra_graph::ids::decode_lenient;
use entra_graph::policy::{
    applicable_profiles, effective_restrictions, preflight, PreflightError, UserScope,
};
use entra_graph::wire::*;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn fido2_methods_list() {
    let page: Page<Fido2Method> = parse_json(&fixture("fido2-methods-list.json"), "list").unwrap();
    assert!(page.context.as_deref().unwrap().contains("fido2Methods"));
    assert_eq!(page.next_link, None);
    assert_eq!(page.value.len(), 2);
    let yk = &page.value[1];
    assert_eq!(
        yk.aa_guid.as_deref(),
        Some("cb69481e-8ff7-4039-93ec-0a2729a154a8")
    );
    assert_eq!(yk.attestation_level, Some(AttestationLevel::Attested));
    assert_eq!(yk.passkey_type, Some(PasskeyType::DeviceBound));
    assert_eq!(page.value[0].passkey_type, Some(PasskeyType::Synced));
    // Both method ids are credential ids with a padding digit.
    assert_eq!(decode_lenient(&yk.id, "id").unwrap().len(), 16);
    assert_eq!(decode_lenient(&page.value[0].id, "id").unwrap().len(), 16);
}

#[test]
fn fido2_methods_beta_page_with_next_link_nulls_and_standard_base64() {
    let page: Page<Fido2Method> =
        parse_json(&fixture("fido2-methods-list-beta-paged.json"), "list").unwrap();
    assert!(page.next_link.as_deref().unwrap().contains("$skiptoken="));
    let m = &page.value[0];
    assert_eq!(
        m.odata_type.as_deref(),
        Some("#microsoft.graph.fido2AuthenticationMethod")
    );
    assert!(m.attestation_certificates.is_empty());
    assert_eq!(m.model, None);
    assert_eq!(decode_lenient(&m.id, "id").unwrap().len(), 16);
}

#[test]
fn fido2_method_get_and_created() {
    let got: Fido2Method = parse_json(&fixture("fido2-method-get.json"), "get").unwrap();
    let created: Fido2Method =
        parse_json(&fixture("fido2-method-created.json"), "created").unwrap();
    assert_eq!(got.id, created.id);
    assert_eq!(created.passkey_type, None, "beta omits passkeyType");
    assert_eq!(created.attestation_certificates.len(), 1);
}

#[test]
fn creation_options_real_shape() {
    let o = CreationOptions::from_json(&fixture("creation-options-beta.json")).unwrap();
    assert_eq!(
        o.challenge_timeout_date_time.as_deref(),
        Some("2024-08-14T16:29:58Z")
    );
    let pk = &o.public_key;
    assert!(pk.challenge.len() > 3000, "challenge is several KB");
    assert_eq!(pk.rp.id, "login.microsoft.com");
    assert_eq!(pk.user.name.as_deref(), Some("kim@contoso.com"));
    assert_eq!(
        pk.pub_key_cred_params
            .iter()
            .map(|p| p.alg)
            .collect::<Vec<_>>(),
        vec![-7, -257]
    );
    assert_eq!(pk.exclude_credentials.len(), 2);
    for c in &pk.exclude_credentials {
        assert_eq!(
            decode_lenient(&c.id, "excludeCredentials.id")
                .unwrap()
                .len(),
            16
        );
    }
    let sel = pk.authenticator_selection.as_ref().unwrap();
    assert_eq!(sel.require_resident_key, Some(true));
    assert_eq!(sel.user_verification.as_deref(), Some("required"));
    let ext = pk.extensions.as_ref().unwrap();
    assert_eq!(
        ext.credential_protection_policy.as_deref(),
        Some("userVerificationOptional")
    );
}

#[test]
fn creation_options_doc_example_wrapped_in_value() {
    let o = CreationOptions::from_json(&fixture("creation-options-v1-doc-wrapped.json")).unwrap();
    assert_eq!(o.public_key.rp.id, "login.microsoftonline.com");
    assert_eq!(o.public_key.timeout, Some(0));
}

#[test]
fn users_and_group_members() {
    let u: User = parse_json(&fixture("user.json"), "user").unwrap();
    assert_eq!(u.user_principal_name.as_deref(), Some("AdeleV@contoso.com"));
    assert_eq!(u.id, "87d349ed-44d7-43e1-9a83-5f2406dee5bd");
    let page: Page<User> = parse_json(&fixture("users-page.json"), "users").unwrap();
    assert_eq!(page.value.len(), 2);
    assert_eq!(page.value[1].mail, None);
    assert!(page.next_link.is_some());
    let members: Page<DirectoryObject> =
        parse_json(&fixture("group-members-page.json"), "members").unwrap();
    assert_eq!(members.value.iter().filter(|m| m.is_user()).count(), 1);
    assert!(!members.value[1].is_user());
}

#[test]
fn fido2_policy_with_passkey_profiles() {
    let p: Fido2Policy = parse_json(&fixture("fido2-policy.json"), "policy").unwrap();
    let scope = UserScope::new("87d349ed-44d7-43e1-9a83-5f2406dee5bd", vec![]);
    assert_eq!(p.state, MethodState::Enabled);
    assert_eq!(
        p.default_passkey_profile.as_deref(),
        Some("00000000-0000-0000-0000-000000000001")
    );
    assert_eq!(
        p.include_targets[0].allowed_passkey_profiles,
        vec!["00000000-0000-0000-0000-000000000001".to_string()]
    );
    assert_eq!(
        applicable_profiles(&p, &scope)[0].name.as_deref(),
        Some("Default passkey profile")
    );
    assert_eq!(p.is_attestation_enforced, Some(true));
    assert_eq!(p.passkey_profiles.len(), 1);
    let eff = effective_restrictions(&p);
    assert!(!eff.attestation_enforced, "profile says disabled, it wins");
    assert_eq!(
        eff.key_restrictions.as_ref().unwrap().enforcement_type,
        Some(EnforcementType::Allow)
    );
    assert_eq!(
        preflight(&p, &scope, "cb69481e-8ff7-4039-93ec-0a2729a154a8", false),
        Ok(())
    );
    assert!(matches!(
        preflight(&p, &scope, "90a3ccdf-635c-4729-a248-9b709135078f", true)
            .map_err(|e| e.cause().clone()),
        Err(PreflightError::AaguidNotAllowed { .. })
    ));
}

#[test]
fn fido2_policy_legacy_fields() {
    let p: Fido2Policy = parse_json(&fixture("fido2-policy-legacy.json"), "policy").unwrap();
    let scope = UserScope::new("87d349ed-44d7-43e1-9a83-5f2406dee5bd", vec![]);
    assert_eq!(p.state, MethodState::Disabled);
    assert!(p.passkey_profiles.is_empty());
    let eff = effective_restrictions(&p);
    assert!(eff.attestation_enforced);
    assert_eq!(eff.key_restrictions.unwrap().aa_guids.len(), 1);
    assert_eq!(
        preflight(&p, &scope, "cb69481e-8ff7-4039-93ec-0a2729a154a8", true),
        Err(PreflightError::MethodDisabled)
    );
}

#[test]
fn odata_errors_both_inner_error_spellings() {
    let e: ODataErrorBody = parse_json(&fixture("error-forbidden.json"), "error").unwrap();
    assert_eq!(e.error.code, "Authorization_RequestDenied");
    assert_eq!(
        e.error.inner_error.unwrap().request_id.as_deref(),
        Some("b2c8f1a4-3e1d-4c52-9f0e-7a5d2c1b9e80")
    );
    let e: ODataErrorBody = parse_json(&fixture("error-missing-entity.json"), "error").unwrap();
    assert!(e
        .error
        .message
        .contains("missing a fido2AuthenticationMethod entity"));
    assert!(e.error.inner_error.unwrap().request_id.is_some());
    let e: ODataErrorBody = parse_json(&fixture("error-throttled.json"), "error").unwrap();
    assert_eq!(e.error.code, "TooManyRequests");
}

#[test]
fn token_responses() {
    let t: TokenResponse = parse_json(&fixture("token-response.json"), "token").unwrap();
    assert_eq!(t.expires_in, 3599);
    assert!(t.access_token.starts_with("eyJ"));
    let e: TokenErrorResponse = parse_json(&fixture("token-error.json"), "token error").unwrap();
    assert_eq!(e.error, "invalid_client");
    assert_eq!(e.error_codes, vec![7000215]);
    assert!(e.error_description.starts_with("AADSTS7000215"));
}

#[test]
fn batch_response_with_inner_throttle() {
    let b: BatchResponse = parse_json(&fixture("batch-response.json"), "batch").unwrap();
    assert_eq!(b.responses.len(), 3);
    let throttled = b.responses.iter().find(|r| r.status == 429).unwrap();
    assert_eq!(
        throttled.headers.get("Retry-After").map(String::as_str),
        Some("3")
    );
}
