//! Graph requests per issued key (issue 18 item 2), counted at the emulator while the real
//! engine bulk-issues keys to three users.
//!
//! Per key the engine reads the user (`GET /users/{upn}`: the object id the key record and
//! leaver processing key on, `accountEnabled` for the disabled-account refusal, and the
//! name attributes of the passkey's display name) and creationOptions; the FIDO2 policy is
//! read once per job; nothing is written until activation. The user read cannot be taken
//! from creationOptions: v1.0 documents `publicKey.user.id` as an opaque, relying-party
//! chosen handle (beta: the object id "encoded … not represented as a GUID", encoding
//! unpublished) and the answer carries no `accountEnabled` or name attributes; see
//! docs/benchmarks.md, "Graph requests per issued key".

use crate::support::*;
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use fido_transport::Transport;
use lifecycle::engine::{BulkDevice, BulkDeviceRequest, BulkKind, BulkOptions};
use lifecycle::template::KeyTransport;

fn soft_device(_: &BulkDeviceRequest) -> Result<BulkDevice, String> {
    let soft = SoftAuthenticator::new(SoftConfig::default()).map_err(|e| e.to_string())?;
    let t: Box<dyn Transport> = Box::new(SoftTransport::new(soft));
    Ok(BulkDevice {
        authenticator: Authenticator::new(t),
        transport: KeyTransport::Usb,
        can_reset_in_place: true,
        evidence: Default::default(),
    })
}

/// What a Graph request is, by method and path.
fn kind(method: &str, path: &str) -> &'static str {
    let p = path.split('?').next().unwrap_or(path);
    let write = method != "GET";
    if p.contains("/oauth2/") || p.contains("/.well-known/") || p.contains("/discovery/") {
        "sign-in of the app (not Graph)"
    } else if p.contains("/fido2Methods/creationOptions") {
        "creationOptions (read)"
    } else if p.contains("authenticationMethodsPolicy") {
        "FIDO2 policy (read)"
    } else if p.ends_with("/checkMemberGroups") || p.ends_with("/memberOf") {
        "group membership (read)"
    } else if p.contains("/fido2Methods") && write {
        "registration (write)"
    } else if p.contains("/users/") && !p.contains("/authentication") && !write {
        "user (read)"
    } else if write {
        "other (write)"
    } else {
        "other (read)"
    }
}

#[test]
fn a_bulk_issue_costs_two_graph_reads_per_key_and_one_policy_read_per_job() {
    let w = world("graph-reads");
    let e = &w.engine;
    let users = [KIM, ADELE, ALEX];
    let mut csv = String::from("user,serial,template\n");
    for (i, u) in users.iter().enumerate() {
        csv.push_str(&format!("{u},GR{i},test-standard\n"));
    }
    let job = e
        .bulk_create(BulkKind::Issue, &csv, "operator:bulk", now_ms())
        .unwrap();
    let before = w.emulator.request_log().len();
    let s = e
        .bulk_run(
            job.job_id,
            &BulkOptions::default(),
            &now_ms,
            &mut soft_device,
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(s.done, users.len() as u64, "{:?}", s.items);
    let log = w.emulator.request_log();
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for r in &log[before..] {
        assert_ne!(r.status, 429, "unthrottled");
        *counts.entry(kind(&r.method, &r.path)).or_default() += 1;
    }
    let n = users.len();
    eprintln!("Graph requests for {n} issued keys by kind: {counts:?}");
    let get = |k: &str| counts.get(k).copied().unwrap_or(0);
    assert_eq!(get("user (read)"), n, "{counts:?}");
    assert_eq!(get("creationOptions (read)"), n, "{counts:?}");
    assert!(get("FIDO2 policy (read)") <= 1, "{counts:?}");
    assert_eq!(get("other (read)"), 0, "{counts:?}");
    assert_eq!(
        get("registration (write)") + get("other (write)"),
        0,
        "registration waits for activation: {counts:?}"
    );
}
