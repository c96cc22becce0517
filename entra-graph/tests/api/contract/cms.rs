//! Issue 13 items 9–14: calls a card-management system needs beyond
//! register/list/delete, against the emulator.

use super::*;

const WHFB: &str = "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod";
const AUTHENTICATOR: &str = "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod";

fn app_with(roles: &[&str]) -> EmulatorConfig {
    EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "cms-app".into(),
            client_secret: Some("cms-secret".into()),
            certificates_pem: vec![],
            roles: Some(roles.iter().map(|r| (*r).to_owned()).collect()),
        }],
        ..EmulatorConfig::default()
    }
}

#[test]
fn authentication_methods_tell_the_last_phishing_resistant_method() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let (body, _) = registration(&c, KIM, "key", None, &MakeArgs::default());
    let m = c.register(KIM, &body).unwrap().method;
    let all = c.authentication_methods(KIM).unwrap();
    assert_eq!(all.len(), 2, "password and the passkey: {all:?}");
    assert!(all
        .iter()
        .any(|a| a.id == m.id && a.is_phishing_resistant()));
    assert_eq!(c.phishing_resistant_left(KIM, &m.id).unwrap(), 0);
    emu.add_authentication_method(KIM, AUTHENTICATOR).unwrap();
    assert_eq!(c.phishing_resistant_left(KIM, &m.id).unwrap(), 0);
    emu.add_authentication_method(KIM, WHFB).unwrap();
    assert_eq!(c.phishing_resistant_left(KIM, &m.id).unwrap(), 1);
    assert_eq!(c.authentication_methods(KIM).unwrap().len(), 4);
}

#[test]
fn authentication_methods_need_more_than_the_passkey_permission() {
    let emu = Emulator::start(app_with(&["UserAuthMethod-Passkey.ReadWrite.All"])).unwrap();
    let c = client(&emu, ApiVersion::V1);
    assert_eq!(
        c.authentication_methods(KIM).unwrap_err().status(),
        Some(403)
    );
    let emu = Emulator::start(app_with(&["UserAuthenticationMethod.Read.All"])).unwrap();
    let c = client(&emu, ApiVersion::V1);
    assert_eq!(c.authentication_methods(KIM).unwrap().len(), 1);
}

#[test]
fn revoke_sign_in_sessions_is_recorded_and_needs_its_permission() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    c.revoke_sign_in_sessions(KIM).unwrap();
    c.revoke_sign_in_sessions(KIM_ID).unwrap();
    assert_eq!(emu.sign_in_revocations(KIM), 2);
    let e = c
        .revoke_sign_in_sessions("nobody@contoso.onmicrosoft.com")
        .unwrap_err();
    assert_eq!(e.status(), Some(404));
    let emu = Emulator::start(app_with(&[
        "UserAuthMethod-Passkey.ReadWrite.All",
        "User.Read.All",
    ]))
    .unwrap();
    let c = client(&emu, ApiVersion::V1);
    assert_eq!(
        c.revoke_sign_in_sessions(KIM).unwrap_err().status(),
        Some(403)
    );
    let emu = Emulator::start(app_with(&["User.RevokeSessions.All"])).unwrap();
    let c = client(&emu, ApiVersion::V1);
    c.revoke_sign_in_sessions(KIM).unwrap();
    assert_eq!(emu.sign_in_revocations(KIM), 1);
}

/// Items 8 and 14: `userPrincipalName eq`, `employeeId eq` and `onPremisesImmutableId
/// eq` filters (the old emulator answered 400 Request_UnsupportedQuery to every filter
/// but startswith), one at a time and through `$batch` for a CSV of employee ids.
#[test]
fn users_found_by_upn_employee_id_and_immutable_id() {
    use entra_graph::UserKey;
    let mut cfg = EmulatorConfig::default();
    cfg.tenant.users[1].on_premises_immutable_id = Some("r3Fvq2dCUE6QwPvS2r5tDQ==".into());
    let emu = Emulator::start(cfg).unwrap();
    let c = client(&emu, ApiVersion::V1);
    let kim = c
        .find_user(UserKey::UserPrincipalName, "KIM@contoso.onmicrosoft.com")
        .unwrap()
        .unwrap();
    assert_eq!(kim.id, KIM_ID);
    let employee = kim.employee_id.clone().unwrap();
    assert_eq!(
        c.find_user(UserKey::EmployeeId, &employee)
            .unwrap()
            .unwrap()
            .id,
        KIM_ID
    );
    let adele = c
        .find_user(UserKey::OnPremisesImmutableId, "r3Fvq2dCUE6QwPvS2r5tDQ==")
        .unwrap()
        .unwrap();
    assert_eq!(
        adele.user_principal_name.as_deref(),
        Some("adelev@contoso.onmicrosoft.com")
    );
    assert_eq!(c.find_user(UserKey::EmployeeId, "E-none").unwrap(), None);
    assert_eq!(c.find_user(UserKey::EmployeeId, "O'Brien").unwrap(), None);
    // A CSV of employee ids: one $batch, one answer per line, in order.
    let before = emu.request_log().len();
    let found = c.find_users(
        UserKey::EmployeeId,
        &[
            employee.clone(),
            "nobody".into(),
            adele.employee_id.clone().unwrap(),
        ],
    );
    assert_eq!(found[0].as_ref().unwrap().as_ref().unwrap().id, KIM_ID);
    assert!(found[1].as_ref().unwrap().is_none());
    assert_eq!(found[2].as_ref().unwrap().as_ref().unwrap().id, adele.id);
    assert!(emu.request_log()[before..]
        .iter()
        .any(|r| r.path.ends_with("/$batch")));
}

/// Item 11: a Temporary Access Pass for bootstrap and lost-key recovery: created (the
/// pass only in that answer, redacted in Debug), listed, one per user, deleted; it
/// needs the general authentication-method permission.
#[test]
fn temporary_access_pass_create_list_delete() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let tap = c.create_temporary_access_pass(KIM, 8 * 60, true).unwrap();
    let pass = tap.temporary_access_pass.clone().unwrap();
    assert!(pass.expose().len() >= 8);
    assert!(!format!("{tap:?}").contains(pass.expose()), "redacted");
    assert_eq!(tap.lifetime_in_minutes, Some(480));
    assert_eq!(tap.is_usable_once, Some(true));
    let listed = c.list_temporary_access_passes(KIM).unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, tap.id);
    assert!(
        listed[0].temporary_access_pass.is_none(),
        "never shown again"
    );
    // One per user.
    let e = c.create_temporary_access_pass(KIM, 60, false).unwrap_err();
    assert_eq!(e.status(), Some(400));
    // Out-of-range lifetimes never leave the client.
    assert!(matches!(
        c.create_temporary_access_pass(KIM, 5, false),
        Err(GraphError::InvalidInput { .. })
    ));
    c.delete_temporary_access_pass(KIM, &tap.id).unwrap();
    assert!(c.list_temporary_access_passes(KIM).unwrap().is_empty());
    assert_eq!(
        c.delete_temporary_access_pass(KIM, &tap.id)
            .unwrap_err()
            .status(),
        Some(404)
    );
    // The passkey-only permission does not cover it.
    let emu = Emulator::start(app_with(&["UserAuthMethod-Passkey.ReadWrite.All"])).unwrap();
    let c = client(&emu, ApiVersion::V1);
    assert_eq!(
        c.create_temporary_access_pass(KIM, 60, true)
            .unwrap_err()
            .status(),
        Some(403)
    );
}

/// Item 12 (Graph side): `lastUsedDateTime` is listed on beta, not on v1.0.
#[test]
fn last_used_date_time_is_a_beta_property() {
    let emu = emulator();
    let beta = client(&emu, ApiVersion::Beta);
    let (body, _) = registration(&beta, KIM, "k", None, &MakeArgs::default());
    let m = beta.register(KIM, &body).unwrap().method;
    assert_eq!(m.last_used_date_time, None, "never used");
    let at = std::time::UNIX_EPOCH + Duration::from_secs(1_780_000_000);
    assert!(emu.record_use(KIM, &m.id, at));
    let listed = beta.list_methods(KIM).unwrap();
    assert_eq!(
        listed[0].last_used_date_time.as_deref(),
        Some(entra_graph::emulator::iso8601(at).as_str())
    );
    let v1 = client(&emu, ApiVersion::V1);
    assert_eq!(v1.list_methods(KIM).unwrap()[0].last_used_date_time, None);
}

/// Item 13 (Graph side): `users/delta` reports every user first, then only the users
/// disabled or deleted since, resumable from the stored delta link.
#[test]
fn users_delta_reports_leavers() {
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    let first = c.users_delta(None).unwrap();
    assert_eq!(first.changed.len(), 5);
    assert!(first.leavers().is_empty());
    assert!(!first.delta_link.is_empty());
    let quiet = c.users_delta(Some(&first.delta_link)).unwrap();
    assert!(quiet.changed.is_empty() && quiet.removed.is_empty());
    assert!(emu.set_account_enabled(KIM, false));
    assert!(emu.delete_user("adelev@contoso.onmicrosoft.com"));
    let next = c.users_delta(Some(&quiet.delta_link)).unwrap();
    let mut leavers = next.leavers();
    leavers.sort();
    let mut want = vec![
        KIM_ID.to_owned(),
        "87d349ed-44d7-43e1-9a83-5f2406dee5bd".to_owned(),
    ];
    want.sort();
    assert_eq!(leavers, want);
    // Resuming from the older link reports the same changes again (nothing lost).
    assert_eq!(
        c.users_delta(Some(&quiet.delta_link))
            .unwrap()
            .leavers()
            .len(),
        2
    );
    assert!(c
        .users_delta(Some(&next.delta_link))
        .unwrap()
        .leavers()
        .is_empty());
}
