//! Crash recovery with a real process: `tests/bin/crash_child.rs` runs a flow against the
//! Entra emulator (started here, real HTTP on loopback), a persistent software
//! authenticator and a SQLite file, and blocks at one journalled step; this test kills
//! it with SIGKILL there, opens a new engine on the same file (a restart), replays the
//! journal and checks the outcome: exactly one passkey at the IdP after a registration,
//! none after a deletion, the key in its final state, no unfinished journal entry and
//! the audit records written.
#![cfg(unix)]

use crate::common::{fixture_program, now_ms, run_until_crash_point, sqlite_engine, temp_dir};

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use entra_graph::emulator::{Emulator, EmulatorConfig};
use fido_transport::client::Authenticator;
use fido_transport::softkey::{SoftAuthenticator, SoftConfig, SoftTransport};
use lifecycle::engine::{Engine, Replayed};
use lifecycle::store::JournalOp;
use lifecycle::template::TemplateSet;
use lifecycle::CredentialState;

const KIM: &str = "kim@contoso.onmicrosoft.com";
const HOLDER_PIN: &str = "holder-pin-2468";
/// How long the child may take to reach its step.
const CHILD_TIMEOUT: Duration = Duration::from_secs(40);

/// The standard test template.
const TEMPLATE: &str = keysmith_testkit::STANDARD_TEMPLATE;

/// A child killed at its step.
struct Killed {
    emulator: Emulator,
    dir: PathBuf,
    key_id: String,
}

impl Drop for Killed {
    fn drop(&mut self) {
        // Kept after a failure, for inspection.
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Killed {
    fn db(&self) -> PathBuf {
        self.dir.join("keysmith.db")
    }

    fn softkey(&self) -> PathBuf {
        self.dir.join("softkey.json")
    }

    /// A restarted station: a new engine on the same SQLite file.
    fn restart(&self) -> Engine {
        let engine = sqlite_engine(&self.emulator, &self.db(), "station-a", 7);
        engine
            .add_template(TemplateSet::from_toml_str(TEMPLATE).expect("template"))
            .expect("add template");
        engine
    }

    /// The software authenticator as the killed child left it.
    fn key(&self) -> Authenticator<SoftTransport> {
        let soft = SoftAuthenticator::open_persistent(self.softkey(), SoftConfig::default())
            .expect("softkey state file");
        Authenticator::new(SoftTransport::new(soft))
    }

    fn methods(&self) -> usize {
        self.emulator.methods(KIM).len()
    }
}

/// Runs the child for `flow` until it reports `point`, then kills it with SIGKILL.
fn kill_child_at(flow: &str, point: &str) -> Killed {
    let emulator = Emulator::start(EmulatorConfig::default()).expect("emulator");
    let dir = temp_dir(&format!("crash-{flow}-{point}"));
    let template = dir.join("template.toml");
    std::fs::write(&template, TEMPLATE).expect("template file");
    let mut command = Command::new(fixture_program("crash_child"));
    command
        .env("CRASH_DB", dir.join("keysmith.db"))
        .env("CRASH_SOFTKEY", dir.join("softkey.json"))
        .env("CRASH_TEMPLATE", &template)
        .env("CRASH_BASE_URL", emulator.base_url())
        .env("CRASH_TENANT", emulator.tenant_id())
        .env("CRASH_CLIENT_ID", emulator.client_id())
        .env(
            "CRASH_CLIENT_SECRET",
            emulator.client_secret().unwrap_or_default(),
        )
        .env("CRASH_FLOW", flow)
        .env("CRASH_POINT", point);
    let seen = run_until_crash_point(command, CHILD_TIMEOUT, point);
    let key_id = seen
        .iter()
        .find_map(|l| l.strip_prefix("KEY ").map(str::to_owned));
    Killed {
        emulator,
        dir,
        key_id: key_id.expect("the child printed the key id"),
    }
}

fn unfinished(engine: &Engine) -> Vec<JournalOp> {
    engine
        .store()
        .journal_unfinished()
        .expect("journal")
        .into_iter()
        .map(|e| e.operation)
        .collect()
}

fn replay_audit(engine: &Engine, key_id: &str, action: &str) -> bool {
    engine.audit_for(key_id).expect("audit").iter().any(|r| {
        r.event.actor == "replay:station-a"
            && r.event.action == action
            && r.event.outcome == "success"
    })
}

/// The replay of a side effect followed by the state-change entry it superseded.
fn side_effect_then_state<'a>(replayed: &'a [Replayed], state: &str) -> &'a Replayed {
    assert_eq!(replayed.len(), 2, "{replayed:?}");
    assert_eq!(replayed[1].operation, JournalOp::State);
    assert_eq!(
        replayed[1].outcome.to_string(),
        format!("superseded: the key is now {state}")
    );
    &replayed[0]
}

fn only(replayed: &[Replayed]) -> &Replayed {
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    &replayed[0]
}

/// Activation killed while its registration is journalled: replay registers (or finds)
/// the passkey once and finishes the activation.
fn register_killed_then_replayed(point: &str, before: usize, outcome: &str) {
    let k = kill_child_at("activate", point);
    assert_eq!(k.methods(), before, "passkeys at the IdP when killed");
    let engine = k.restart();
    assert_eq!(
        unfinished(&engine),
        vec![JournalOp::State, JournalOp::Register]
    );
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Issued
    );

    let r = engine.replay_journal(now_ms()).expect("replay");
    let r = side_effect_then_state(&r, "active");
    assert_eq!(r.operation, JournalOp::Register);
    assert_eq!(r.outcome.to_string(), outcome);
    assert_eq!(k.methods(), 1, "exactly one passkey at the IdP");
    assert!(unfinished(&engine).is_empty());
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Active
    );
    assert!(engine
        .store()
        .pending_for_key(&k.key_id)
        .unwrap()
        .is_empty());
    let pks = engine.passkeys(&k.key_id).unwrap();
    assert_eq!(pks.len(), 1);
    assert_eq!(pks[0].state, CredentialState::Active);
    assert!(pks[0].idp_method_id.is_some());
    assert!(replay_audit(&engine, &k.key_id, "register"));
    assert!(replay_audit(&engine, &k.key_id, "activate"));
    // Nothing left; the passkey works with the holder's PIN (set before the kill).
    assert!(engine.replay_journal(now_ms()).unwrap().is_empty());
    engine
        .sign_in(&k.key_id, HOLDER_PIN, &mut k.key())
        .expect("sign in after restart");
    assert_eq!(k.methods(), 1);
}

#[test]
fn activation_killed_after_journal_append_registers_once() {
    register_killed_then_replayed("after-journal", 0, "registered");
}

#[test]
fn activation_killed_after_idp_call_is_found_not_registered_again() {
    register_killed_then_replayed("after-idp-call", 1, "found at IdP");
}

/// Forced revocation killed while its deletion is journalled: replay deletes once (or
/// sees it gone) and the revocation is not lost.
fn delete_killed_then_replayed(point: &str, before: usize, outcome: &str) {
    let k = kill_child_at("revoke", point);
    assert_eq!(k.methods(), before, "passkeys at the IdP when killed");
    let engine = k.restart();
    assert_eq!(
        unfinished(&engine),
        vec![JournalOp::State, JournalOp::Delete]
    );

    let r = engine.replay_journal(now_ms()).expect("replay");
    let r = side_effect_then_state(&r, "revoked");
    assert_eq!(r.operation, JournalOp::Delete);
    assert_eq!(r.outcome.to_string(), outcome);
    assert_eq!(k.methods(), 0, "no passkey left at the IdP");
    assert!(unfinished(&engine).is_empty());
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Revoked
    );
    let pks = engine.passkeys(&k.key_id).unwrap();
    assert!(pks.iter().all(|p| p.idp_method_id.is_none()), "{pks:?}");
    assert!(engine
        .audit_for(&k.key_id)
        .unwrap()
        .iter()
        .any(|r| r.event.actor == "replay:station-a"));
    assert!(engine.replay_journal(now_ms()).unwrap().is_empty());
}

#[test]
fn revoke_killed_after_journal_append_deletes_on_replay() {
    delete_killed_then_replayed("after-journal", 1, "done");
}

#[test]
fn revoke_killed_after_idp_call_is_closed_on_replay() {
    delete_killed_then_replayed("after-idp-call", 0, "already gone");
}

/// Activation killed after its registration was closed, before the key's state change:
/// only the journalled state change is open, and replay finishes it without a second
/// registration (the holder's PIN is already on the key).
#[test]
fn activation_killed_before_state_change_is_finished_by_replay() {
    let k = kill_child_at("activate", "before-state-change");
    assert_eq!(
        k.methods(),
        1,
        "the registration went through before the kill"
    );
    let engine = k.restart();
    assert_eq!(unfinished(&engine), vec![JournalOp::State]);
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Issued
    );
    let r = engine.replay_journal(now_ms()).expect("replay");
    let r = only(&r);
    assert_eq!(r.operation, JournalOp::State);
    assert_eq!(r.outcome.to_string(), "activate finished by replay");
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Active
    );
    assert_eq!(k.methods(), 1, "still exactly one passkey");
    assert!(unfinished(&engine).is_empty());
    assert!(replay_audit(&engine, &k.key_id, "activate"));
    assert!(engine.replay_journal(now_ms()).unwrap().is_empty());
    engine
        .sign_in(&k.key_id, HOLDER_PIN, &mut k.key())
        .expect("sign in");
}

/// Forced revocation killed after the IdP deletion was closed, before the key's state
/// change: nothing is at the IdP any more and only the journalled state change is open;
/// replay finishes the revocation (no lost revocation, no second deletion).
#[test]
fn revoke_killed_before_state_change_is_finished_by_replay() {
    let k = kill_child_at("revoke", "before-state-change");
    assert_eq!(k.methods(), 0, "the deletion went through before the kill");
    let engine = k.restart();
    assert_eq!(unfinished(&engine), vec![JournalOp::State]);
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Active
    );
    let r = engine.replay_journal(now_ms()).expect("replay");
    let r = only(&r);
    assert_eq!(r.operation, JournalOp::State);
    assert_eq!(
        r.outcome.to_string(),
        "revoke finished by replay; the key is revoked"
    );
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Revoked
    );
    assert_eq!(k.methods(), 0);
    assert!(unfinished(&engine).is_empty());
    assert!(replay_audit(&engine, &k.key_id, "revoke"));
    let deletions = engine
        .audit_for(&k.key_id)
        .unwrap()
        .iter()
        .filter(|r| r.event.action == "idp-delete")
        .count();
    assert_eq!(deletions, 1, "the passkey was deleted once");
    assert!(engine.replay_journal(now_ms()).unwrap().is_empty());
}

/// Activation killed after journalling its state change, before its registration was
/// journalled: the holder's PIN is on the key but nothing went to the IdP. Replay closes
/// the entry without activating (registrations still pending) and the activation, run
/// again, registers once.
#[test]
fn activation_killed_after_state_journal_is_settled_and_runs_again() {
    let k = kill_child_at("activate", "after-state-journal");
    assert_eq!(k.methods(), 0);
    let engine = k.restart();
    assert_eq!(unfinished(&engine), vec![JournalOp::State]);
    let r = engine.replay_journal(now_ms()).expect("replay");
    let r = only(&r);
    assert_eq!(r.operation, JournalOp::State);
    assert!(
        r.outcome.to_string().starts_with("activation incomplete"),
        "{r:?}"
    );
    assert!(unfinished(&engine).is_empty());
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Issued
    );
    let key = engine
        .activate("self:kim", &k.key_id, HOLDER_PIN, &mut k.key(), now_ms())
        .expect("activation run again");
    assert_eq!(key.state, CredentialState::Active);
    assert_eq!(k.methods(), 1);
}

/// Forced revocation killed after journalling its state change, before its deletion was
/// journalled: replay runs the revocation again (the passkey is deleted once) — the
/// revocation is not lost.
#[test]
fn revoke_killed_after_state_journal_is_finished_by_replay() {
    let k = kill_child_at("revoke", "after-state-journal");
    assert_eq!(k.methods(), 1, "nothing was deleted before the kill");
    let engine = k.restart();
    assert_eq!(unfinished(&engine), vec![JournalOp::State]);
    let r = engine.replay_journal(now_ms()).expect("replay");
    let r = only(&r);
    assert_eq!(
        r.outcome.to_string(),
        "revoke finished by replay; the key is revoked"
    );
    assert_eq!(k.methods(), 0);
    assert_eq!(
        engine.key(&k.key_id).unwrap().state,
        CredentialState::Revoked
    );
    assert!(unfinished(&engine).is_empty());
    assert!(engine.replay_journal(now_ms()).unwrap().is_empty());
}
