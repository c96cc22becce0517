//! Issue 13 items 5 and 6: group membership through `checkMemberGroups` /
//! `transitiveMemberOf`, and a least-privileged (passkey-only) app.

use super::*;
use entra_graph::emulator::GroupFixture;
use entra_graph::policy::SkippedCheck;

fn app_with(roles: &[&str]) -> EmulatorConfig {
    EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "least-app".into(),
            client_secret: Some("least-secret".into()),
            certificates_pem: vec![],
            roles: Some(roles.iter().map(|r| (*r).to_owned()).collect()),
        }],
        ..EmulatorConfig::default()
    }
}

fn group_target(id: &str) -> PolicyTarget {
    PolicyTarget {
        target_type: "group".into(),
        id: id.into(),
        is_registration_required: None,
        allowed_passkey_profiles: vec![],
    }
}

/// Six groups nested in a chain, KIM's group at the bottom: deeper than the old
/// four-level walk through `/members` pages.
fn nested_tenant() -> (EmulatorConfig, String) {
    let mut cfg = EmulatorConfig::default();
    let mut inner = GROUP.to_owned();
    for i in 0..6 {
        let id = format!("7d1c2b3a-0000-4000-8000-0000000000{i:02}");
        cfg.tenant.groups.push(GroupFixture {
            id: id.clone(),
            display_name: format!("Level {i}"),
            members: vec![inner.clone()],
        });
        inner = id;
    }
    (cfg, inner)
}

#[test]
fn preflight_uses_check_member_groups_at_any_depth() {
    let (cfg, top) = nested_tenant();
    let emu = Emulator::start(cfg).unwrap();
    let c = client(&emu, ApiVersion::V1);
    let mut p = emu.policy();
    p.include_targets = vec![group_target(&top)];
    emu.set_policy(p);
    assert_eq!(c.preflight(KIM, YK5_STR, true), Ok(()));
    let log = emu.request_log();
    assert_eq!(
        log.iter()
            .filter(|r| r.method == "POST" && r.path.ends_with("/checkMemberGroups"))
            .count(),
        1,
        "one call for the target groups, whatever their size"
    );
    assert!(
        !log.iter().any(|r| r.path.contains("/members")),
        "no member paging"
    );
    assert!(matches!(
        plain(c.preflight("leeg@contoso.onmicrosoft.com", YK5_STR, true)),
        Err(GraphError::Preflight(
            PreflightError::UserNotTargeted { .. }
        ))
    ));
}

#[test]
fn check_member_groups_chunks_by_20_and_transitive_member_of_lists_every_level() {
    let (cfg, top) = nested_tenant();
    let emu = Emulator::start(cfg).unwrap();
    let c = client(&emu, ApiVersion::V1);
    let mut ids: Vec<String> = (0..25)
        .map(|i| format!("99999999-0000-4000-8000-0000000000{i:02}"))
        .collect();
    ids.push(top.clone());
    ids.push(GROUP.to_owned());
    let found = c.member_groups(KIM_ID, &ids).unwrap();
    assert_eq!(found, vec![top.clone(), GROUP.to_owned()]);
    let posts = emu
        .request_log()
        .iter()
        .filter(|r| r.path.ends_with("/checkMemberGroups"))
        .count();
    assert_eq!(posts, 2, "27 ids: 20 + 7");
    let groups = c.transitive_member_of(KIM).unwrap();
    assert_eq!(groups.len(), 7, "its own group and the six around it");
    assert!(groups.iter().any(|g| g.id == top));
}

#[test]
fn group_reads_accept_readwrite_grants() {
    for role in ["GroupMember.ReadWrite.All", "Group.ReadWrite.All"] {
        let emu = Emulator::start(app_with(&[role, "User.Read.All"])).unwrap();
        let c = client(&emu, ApiVersion::V1);
        assert_eq!(c.group_members(GROUP).unwrap().len(), 4, "{role}");
        assert_eq!(
            c.member_groups(KIM_ID, &[GROUP.to_owned()]).unwrap().len(),
            1
        );
    }
    // checkMemberGroups needs the user read as well.
    let emu = Emulator::start(app_with(&["GroupMember.Read.All"])).unwrap();
    let c = client(&emu, ApiVersion::V1);
    assert_eq!(
        c.member_groups(KIM_ID, &[GROUP.to_owned()])
            .unwrap_err()
            .status(),
        Some(403)
    );
}

#[test]
fn passkey_only_app_passes_the_connection_check_and_issues() {
    let emu = Emulator::start(app_with(&["UserAuthMethod-Passkey.ReadWrite.All"])).unwrap();
    let c = client(&emu, ApiVersion::V1);
    // The old check read /users (User.Read.All) and failed with 403.
    c.check_connection().unwrap();
    let report = c.preflight_report(KIM, YK5_STR, true).unwrap();
    assert_eq!(
        report.skipped,
        vec![SkippedCheck {
            step: "FIDO2 method policy",
            permission: "Policy.Read.AuthenticationMethod",
        }]
    );
    c.preflight(KIM, YK5_STR, true).unwrap();
    let (body, cred) = registration(&c, KIM, "least privilege", None, &MakeArgs::default());
    let m = c.register(KIM, &body).unwrap().method;
    assert!(entra_graph::ids::matches_credential(&m.id, &cred));
    assert_eq!(c.list_methods(KIM).unwrap().len(), 1);
    assert!(!c.delete_method(KIM, &m.id).unwrap().already_gone);
}

#[test]
fn preflight_names_the_directory_permission_a_group_target_needs() {
    // The policy can be read, the user can not.
    let emu = Emulator::start(app_with(&[
        "UserAuthMethod-Passkey.ReadWrite.All",
        "Policy.Read.AuthenticationMethod",
    ]))
    .unwrap();
    let mut p = emu.policy();
    p.include_targets = vec![group_target(GROUP)];
    emu.set_policy(p.clone());
    let c = client(&emu, ApiVersion::V1);
    let report = c.preflight_report(KIM, YK5_STR, true).unwrap();
    assert_eq!(report.skipped[0].permission, "User.Read.All");
    // The key checks still run against every profile.
    p.set_key_restrictions(Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Block),
        aa_guids: vec![YK5_STR.into()],
    }));
    emu.set_policy(p);
    assert!(matches!(
        plain(c.preflight_report(KIM, YK5_STR, true)),
        Err(GraphError::Preflight(PreflightError::AaguidBlocked { .. }))
    ));
    // The user can be read, its groups can not.
    let emu = Emulator::start(app_with(&[
        "Policy.Read.AuthenticationMethod",
        "User.Read.All",
    ]))
    .unwrap();
    let mut p = emu.policy();
    p.include_targets = vec![group_target(GROUP)];
    emu.set_policy(p);
    let c = client(&emu, ApiVersion::V1);
    let report = c.preflight_report(KIM, YK5_STR, true).unwrap();
    assert_eq!(report.skipped[0].permission, "GroupMember.Read.All");
    // With every permission nothing is skipped.
    let emu = emulator();
    let c = client(&emu, ApiVersion::V1);
    assert!(c
        .preflight_report(KIM, YK5_STR, true)
        .unwrap()
        .skipped
        .is_empty());
}
