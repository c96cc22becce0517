//! Entra as of 2026 through the engine (issue 19 items 1 and 2), against the real
//! emulator over HTTP: a template whose challenge outlives what its connection's Graph
//! version allows is refused when loaded (deferred activation needs beta), v1.0 issues
//! end to end, and reconcile reports issued keys a policy change now blocks at sign-in,
//! naming the passkey profile. Emulator behaviour: `docs/ENTRA.md`, section "2026".

use std::sync::Arc;

use entra_graph::auth::{Credential, Secret};
use entra_graph::emulator::Emulator;
use entra_graph::wire::{EnforcementType, KeyRestrictions, PasskeyProfile, PolicyTarget};
use entra_graph::{ApiVersion, GraphClient};
use lifecycle::engine::{DriftKind, Engine, ReconcileOptions, ReconcileReport};
use lifecycle::idp::EntraIdp;
use lifecycle::store::{PgStore, PinKey, SqliteStore};
use lifecycle::template::{GraphApiVersion, TemplateError, TemplateSet};
use lifecycle::{CredentialState, Error};

use crate::support::*;

/// The emulator's group (Kim is in it).
const GROUP: &str = "02bd9fd6-8f93-4758-87c3-1fb73740a315";

fn client(emulator: &Emulator, version: ApiVersion) -> GraphClient {
    GraphClient::new(
        emulator.graph_config(version),
        Credential::ClientSecret {
            client_id: emulator.client_id().to_owned(),
            secret: Secret::new(emulator.client_secret().unwrap_or_default()),
        },
    )
    .expect("graph client")
}

/// An engine whose connection [`CONNECTION`] uses Graph `version`, no template loaded.
fn engine_on(w: &World, version: ApiVersion, db: &str) -> Engine {
    let store = SqliteStore::open(w.dir.join(db)).expect("sqlite store");
    Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), "station-v")
        .idp(Arc::new(EntraIdp::new(
            CONNECTION,
            client(&w.emulator, version),
        )))
        .build()
        .expect("engine")
}

/// The standard template with the given challenge timeout and template version.
fn standard(minutes: i64, version: GraphApiVersion) -> TemplateSet {
    let mut t = template();
    let p = t.passkey.get_mut("entra").expect("entra passkey template");
    p.challenge_timeout_minutes = Some(minutes);
    p.idp.graph_api_version = version;
    t
}

/// Item 1: deferred activation (a 60-minute challenge) on a v1.0 connection is refused
/// when the template is loaded, saying which version it needs; the same template on a
/// beta connection (an existing configuration) loads; a 5-minute template issues and
/// activates end to end over v1.0.
#[test]
fn a_long_challenge_needs_a_beta_connection_and_v1_issues_end_to_end() {
    let w = world("entra2026-versions");
    let v1 = engine_on(&w, ApiVersion::V1, "v1.db");
    let e = v1
        .add_template(standard(60, GraphApiVersion::Beta))
        .unwrap_err();
    let Error::Template(TemplateError::Invalid(problems)) = &e else {
        panic!("not a template problem: {e:?}");
    };
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].field, "passkey.entra.challenge_timeout_minutes");
    let m = &problems[0].message;
    for words in [
        "60 minutes",
        "deferred activation",
        "uses Graph v1.0",
        "challenge lives 5 minutes",
        "needs a Graph beta connection",
        "graph_api_version = \"beta\"",
    ] {
        assert!(m.contains(words), "{words:?} missing from: {m}");
    }
    // The template alone (it says beta) is valid: the combination is what is refused.
    standard(60, GraphApiVersion::Beta).validate().unwrap();
    // A template that says v1.0 with 60 minutes is refused by the template check itself.
    assert!(standard(60, GraphApiVersion::V1_0).validate().is_err());

    // Existing beta configurations keep working.
    w.engine
        .add_template(standard(60, GraphApiVersion::Beta))
        .expect("beta connection, 60 minutes");

    // v1.0: the fixed 5-minute challenge, issued and activated at once.
    let t = standard(5, GraphApiVersion::V1_0);
    v1.add_template(t.clone()).expect("v1.0, 5 minutes");
    let mut key = softkey();
    let now = now_ms();
    let k = v1
        .issue(&request(KIM, "SN-V1"), &t.credential.name, &mut key, now)
        .expect("issue over v1.0");
    let k = v1
        .activate("self:kim", &k.key_id, HOLDER_PIN, &mut key, now + 1)
        .expect("activate over v1.0");
    assert_eq!(k.state, CredentialState::Active);
    let log = w.emulator.request_log();
    let co: Vec<_> = log
        .iter()
        .filter(|r| r.path.contains("creationOptions"))
        .collect();
    assert!(!co.is_empty());
    assert!(
        co.iter()
            .all(|r| r.path.starts_with("/v1.0/") && r.path.ends_with("/creationOptions")),
        "v1.0 creationOptions without a parameter: {:?}",
        co.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    let methods = w.emulator.methods(KIM_ID);
    assert_eq!(methods.len(), 1);
}

fn sign_in_findings(r: &ReconcileReport) -> Vec<&lifecycle::engine::DriftFinding> {
    r.findings
        .iter()
        .filter(|f| f.kind == DriftKind::WouldFailAtSignIn)
        .collect()
}

fn profile(id: &str, name: &str, types: &str, allow: Option<&str>) -> PasskeyProfile {
    PasskeyProfile {
        id: id.into(),
        name: Some(name.into()),
        passkey_types: Some(types.into()),
        attestation_enforcement: None,
        key_restrictions: allow.map(|a| KeyRestrictions {
            is_enforced: true,
            enforcement_type: Some(EnforcementType::Allow),
            aa_guids: vec![a.into()],
        }),
    }
}

fn target(id: &str, profiles: &[&str]) -> PolicyTarget {
    PolicyTarget {
        target_type: "group".into(),
        id: id.into(),
        is_registration_required: Some(false),
        allowed_passkey_profiles: profiles.iter().map(|p| p.to_string()).collect(),
    }
}

/// Item 2: reconcile reports issued keys whose AAGUID or passkey type a policy change
/// now blocks at sign-in ("would fail at sign-in"), with the profile that blocks them;
/// any profile assigned to the user that admits the key clears it; exclusion beats
/// inclusion; nothing is "fixed" (a policy can be changed back).
/// On SQLite and, when `KEYSMITH_PG_URL` names a server, PostgreSQL.
#[test]
fn reconcile_reports_keys_a_policy_change_blocks_at_sign_in() {
    let w = world("entra2026-signin");
    sign_in_drift(&w.engine, &w.emulator);
    let Some(url) = keysmith_testkit::pg_url("PostgreSQL would_fail_at_sign_in test") else {
        return;
    };
    let emulator = keysmith_testkit::start_emulator(Default::default());
    let schema = format!("signin2026_{}_{}", std::process::id(), now_ms() % 1_000_000);
    let store = PgStore::connect_in_schema(&url, &schema).expect("postgres store");
    let engine = Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), "station-pg")
        .idp(Arc::new(EntraIdp::new(
            CONNECTION,
            keysmith_testkit::graph_client(&emulator),
        )))
        .template(template())
        .build()
        .expect("engine");
    sign_in_drift(&engine, &emulator);
}

fn sign_in_drift(e: &Engine, emulator: &Emulator) {
    const OTHER: &str = "00000000-0000-0000-0000-0000000000aa";
    let now = now_ms();
    let users = vec![KIM.to_owned()];
    let key = active(e, KIM, "SN-SIGNIN", now);
    let aaguid = entra_graph::policy::format_aaguid(&key.aaguid);
    let report = |fix: bool| {
        e.reconcile(
            "operator:alice",
            &users,
            &ReconcileOptions {
                fix,
                delete_unknown: false,
            },
            now + 100,
        )
        .expect("reconcile")
    };
    assert!(report(false).is_clean(), "{:?}", report(false));
    let original = emulator.policy();

    // The default profile now allows only another model.
    let mut p = original.clone();
    p.passkey_profiles = vec![profile(
        "p-default",
        "Default passkey profile",
        "deviceBound",
        Some(OTHER),
    )];
    p.default_passkey_profile = Some("p-default".into());
    emulator.update_policy(p.clone()).unwrap();
    let r = report(true);
    let found = sign_in_findings(&r);
    assert_eq!(found.len(), 1, "{r:?}");
    let f = found[0];
    assert_eq!(f.key_id.as_deref(), Some(key.key_id.as_str()));
    assert_eq!(f.idp_connection, CONNECTION);
    assert!(!f.fixed, "reported only");
    assert_eq!(f.error, None);
    let b = f.blocked_by.as_ref().expect("blocked_by");
    assert_eq!(b.profiles, vec!["Default passkey profile".to_owned()]);
    assert!(
        b.reason.contains(&aaguid) && b.reason.contains("allow list"),
        "{}",
        b.reason
    );
    let json = serde_json::to_value(f).unwrap();
    assert_eq!(json["kind"], "would_fail_at_sign_in");
    assert_eq!(json["blocked_by"]["profiles"][0], "Default passkey profile");
    assert_eq!(
        e.key(&key.key_id).unwrap().state,
        CredentialState::Active,
        "the key is left as it is"
    );

    // A second profile assigned to Kim's group admits the key: cleared.
    p.passkey_profiles.push(profile(
        "p-keys",
        "Security keys",
        "deviceBound",
        Some(&aaguid),
    ));
    p.include_targets = vec![
        target("all_users", &["p-default"]),
        target(GROUP, &["p-keys"]),
    ];
    emulator.update_policy(p.clone()).unwrap();
    assert!(sign_in_findings(&report(false)).is_empty());

    // Passkey type: that profile now allows synced passkeys only; both profiles block.
    p.passkey_profiles[1].passkey_types = Some("synced".into());
    emulator.update_policy(p.clone()).unwrap();
    let r = report(false);
    let found = sign_in_findings(&r);
    assert_eq!(found.len(), 1, "{r:?}");
    let b = found[0].blocked_by.as_ref().unwrap();
    assert_eq!(
        b.profiles,
        vec![
            "Default passkey profile".to_owned(),
            "Security keys".to_owned()
        ]
    );

    // Exclusion beats inclusion: the policy itself blocks, no profile named.
    let mut p = original.clone();
    p.exclude_targets = vec![target(GROUP, &[])];
    emulator.update_policy(p).unwrap();
    let r = report(false);
    let found = sign_in_findings(&r);
    assert_eq!(found.len(), 1, "{r:?}");
    let b = found[0].blocked_by.as_ref().unwrap();
    assert!(b.profiles.is_empty());
    assert!(b.reason.contains("excluded"), "{}", b.reason);
    assert_eq!(b.blocked_by(), "the FIDO2 policy");

    // No profiles (a tenant before the migration): the top-level list decides.
    let mut p = entra_graph::emulator::legacy_policy();
    p.key_restrictions = Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Block),
        aa_guids: vec![aaguid.clone()],
    });
    emulator.update_policy(p).unwrap();
    let r = report(false);
    assert_eq!(sign_in_findings(&r).len(), 1, "{r:?}");

    // Back to the original policy: clean again.
    emulator.update_policy(original).unwrap();
    assert!(report(false).is_clean());
}

/// An app that may not read the FIDO2 policy cannot tell whether a passkey would fail at
/// sign-in: reconcile reports nothing for it (a warning names the permission) and the
/// user's check does not fail.
#[test]
fn without_the_policy_permission_the_sign_in_check_is_skipped() {
    use entra_graph::emulator::{AppRegistration, EmulatorConfig};
    let emulator = keysmith_testkit::start_emulator(EmulatorConfig {
        apps: vec![AppRegistration {
            client_id: "passkey-app".into(),
            client_secret: Some("passkey-secret".into()),
            certificates_pem: vec![],
            roles: Some(vec![
                "UserAuthMethod-Passkey.ReadWrite.All".into(),
                "User.Read.All".into(),
            ]),
        }],
        ..EmulatorConfig::default()
    });
    let dir = keysmith_testkit::TempDir::new("entra2026-noperm");
    let store = SqliteStore::open(dir.join("k.db")).expect("sqlite store");
    let engine = Engine::builder(Arc::new(store), PinKey::from_bytes([7; 32]), "station-n")
        .idp(Arc::new(EntraIdp::new(
            CONNECTION,
            client(&emulator, ApiVersion::Beta),
        )))
        .template(template())
        .build()
        .expect("engine");
    let now = now_ms();
    let key = active(&engine, KIM, "SN-NOPERM", now);
    let mut p = emulator.policy();
    p.set_key_restrictions(Some(KeyRestrictions {
        is_enforced: true,
        enforcement_type: Some(EnforcementType::Block),
        aa_guids: vec![entra_graph::policy::format_aaguid(&key.aaguid)],
    }));
    emulator.update_policy(p).unwrap();
    let r = engine
        .reconcile(
            "operator:alice",
            &[KIM.to_owned()],
            &ReconcileOptions::default(),
            now + 100,
        )
        .expect("reconcile");
    assert!(r.is_clean(), "{r:?}");
    assert!(emulator
        .request_log()
        .iter()
        .any(|x| x.path.contains("/fido2") && x.status == 403));
}
