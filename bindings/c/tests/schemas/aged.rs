//! The two reports whose items need history, driven through the C calls into a state that
//! has one each: a key whose passkey last signed in a month ago (`ks_key_list_stale`, after
//! reconciliation read Entra's beta `lastUsedDateTime`), and an IdP deletion that failed and
//! waits in the journal (`ks_journal_replay`).

use std::path::Path;
use std::time::{Duration, SystemTime};

use entra_graph::emulator::{Emulator, Fault, FaultRule};
use keysmith_testkit::{softkey_spec, MEGAN};

use crate::abi::{self, Docs, Session};
use crate::PIN;

/// A stale key in `ks_key_list_stale`, then its revocation's failed deletion replayed.
pub fn stale_key_and_journal_replay(docs: &mut Docs, s: &Session, emulator: &Emulator, dir: &Path) {
    let g = abi::Device::open(&softkey_spec(dir, "g.json"));
    let params = format!(r#"{{"template":"test-standard","user":"{MEGAN}"}}"#);
    docs.add("issue-params", &params);
    let key = s.json(docs, "key", |o| s.issue_and_activate(&g, &params, PIN, o));
    let key_id = key["key_id"].as_str().unwrap().to_owned();
    if key["state"] == "issued" {
        s.json(docs, "key", |o| s.activate(&g, &key_id, PIN, o));
    }

    // Every passkey of Megan's last signed in 30 days ago, as the IdP's listing says;
    // reconciliation reads it, and the key is unused for the last 7 days.
    let month_ago = SystemTime::now() - Duration::from_secs(30 * 86_400);
    let methods = emulator.methods(MEGAN);
    assert!(!methods.is_empty(), "Megan has a passkey at the IdP");
    for m in &methods {
        assert!(emulator.record_use(MEGAN, &m.id, month_ago), "{}", m.id);
    }
    let request = format!(r#"{{"users":["{MEGAN}"],"fix":false,"delete_unknown":false}}"#);
    docs.add("reconcile-request", &request);
    s.json(docs, "reconcile-report", |o| s.reconcile(Some(&request), o));
    let stale = s.json(docs, "key-stale-list", |o| s.stale(7, o));
    let item = stale
        .as_array()
        .and_then(|a| a.iter().find(|k| k["key_id"] == key_id.as_str()))
        .unwrap_or_else(|| panic!("{key_id} is not in the stale list: {stale}"));
    assert!(item["last_used_ms"].is_u64(), "{item}");

    // The IdP refuses the passkey's deletion once: the (not forced) revocation stands and
    // the deletion waits in the journal; the replay does it.
    emulator.inject(FaultRule::new(
        "DELETE",
        "fido2Methods",
        Fault::Status {
            status: 403,
            retry_after: None,
        },
        1,
    ));
    let key = s.json(docs, "key", |o| s.revoke(&key_id, false, o));
    assert_eq!(key["state"], "revoked", "{key}");
    assert_eq!(emulator.pending_faults(), 0, "the deletion was tried");
    let replayed = s.json(docs, "journal-replay", |o| s.journal_replay(o));
    assert!(
        replayed.as_array().is_some_and(|r| r
            .iter()
            .any(|e| e["key_id"] == key_id.as_str() && e["operation"] == "delete")),
        "{replayed}"
    );
}
