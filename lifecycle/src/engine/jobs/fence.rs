//! Row claims of a bulk run: the repository as the runner's engine view sees it, with
//! every key write made while a row is held fenced by that row's claim, and the
//! heartbeat that renews the claim while the row runs.
//!
//! The run's engine view is shared by its worker threads, each running one row at a
//! time; the fence is kept per thread ([`FencedStore::hold`]), so a worker's writes carry
//! its own row's claim. Fenced writes: every [`UnitOfWork`] (key transitions, passkeys,
//! pending registrations, journal entries and closes, audit records) and the sealed
//! transport PIN (stored and deleted). A write whose claim was taken over by another
//! runner fails with [`StoreError::ClaimLost`] and changes nothing.

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::ThreadId;
use std::time::Duration;

use crate::store::{
    AdoptedRows, AuditQuery, AuditRecord, AuditVerification, BulkClaim, BulkCounts, BulkFence,
    BulkItem, BulkItemStatus, BulkJob, Committed, JournalEntry, JournalFence, KeyQuery, KeyRecord,
    NewAuditRecord, NewBulkJob, NewKey, PasskeyRecord, PendingPosition, PendingRegistration,
    PinKey, Result, Store, TransportPin, UnitOfWork, UnixMillis, UserRecord,
};

use super::BulkClock;

/// The repository with the writes of a thread that holds a row fenced by its claim.
pub(super) struct FencedStore {
    inner: Arc<dyn Store>,
    held: Mutex<HashMap<ThreadId, BulkFence>>,
}

/// Ends a [`FencedStore::hold`] when dropped.
pub(super) struct Held<'a> {
    store: &'a FencedStore,
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.store
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&std::thread::current().id());
    }
}

impl FencedStore {
    pub(super) fn new(inner: Arc<dyn Store>) -> Self {
        FencedStore {
            inner,
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Fences this thread's writes by `fence` until the guard is dropped.
    pub(super) fn hold(&self, fence: BulkFence) -> Held<'_> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(std::thread::current().id(), fence);
        Held { store: self }
    }

    /// The repository without fencing (for the heartbeat and the runner's own rows).
    pub(super) fn inner(&self) -> &dyn Store {
        self.inner.as_ref()
    }

    fn fence(&self) -> Option<BulkFence> {
        self.held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&std::thread::current().id())
            .cloned()
    }
}

/// Renews `fence` every third of `lease_ms` on its own thread until `stop` is dropped or
/// sent to; a lost claim ends the renewing (the row's writes are refused by then).
pub(super) fn heartbeat(
    store: &dyn Store,
    fence: &BulkFence,
    clock: &BulkClock,
    lease_ms: u64,
    stop: &mpsc::Receiver<()>,
) {
    let every = Duration::from_millis((lease_ms / 3).max(1));
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(every) {
        if let Err(e) = store.bulk_renew_claim(fence, clock(), lease_ms) {
            tracing::warn!(job = fence.job_id, line = fence.line, error = %e, "bulk row claim not renewed");
            if matches!(e, crate::store::StoreError::ClaimLost { .. }) {
                return;
            }
        }
    }
}

impl Store for FencedStore {
    fn schema_version(&self) -> Result<u32> {
        self.inner.schema_version()
    }
    fn check_integrity(&self) -> Result<()> {
        self.inner.check_integrity()
    }
    fn verify_audit(&self, host_key: &PinKey) -> Result<AuditVerification> {
        self.inner.verify_audit(host_key)
    }
    fn adopt_unauthenticated_rows(
        &self,
        host_key: &PinKey,
        actor: &str,
        now: UnixMillis,
    ) -> Result<AdoptedRows> {
        self.inner.adopt_unauthenticated_rows(host_key, actor, now)
    }
    fn set_row_key(&self, host_key: &PinKey) {
        self.inner.set_row_key(host_key)
    }
    fn put_enrolment_code(
        &self,
        code: &crate::store::EnrolmentCode,
        audit: &NewAuditRecord,
    ) -> Result<()> {
        self.inner.put_enrolment_code(code, audit)
    }
    fn open_enrolment_codes(
        &self,
        station: &str,
        now: UnixMillis,
    ) -> Result<Vec<crate::store::EnrolmentCode>> {
        self.inner.open_enrolment_codes(station, now)
    }
    fn enrol_agent(
        &self,
        agent: &crate::store::AgentRecord,
        code_id: Option<&str>,
        audit: &NewAuditRecord,
        now: UnixMillis,
    ) -> Result<bool> {
        self.inner.enrol_agent(agent, code_id, audit, now)
    }
    fn get_agent(&self, agent_id: &str) -> Result<Option<crate::store::AgentRecord>> {
        self.inner.get_agent(agent_id)
    }
    fn list_agents(&self) -> Result<Vec<crate::store::AgentRecord>> {
        self.inner.list_agents()
    }
    fn set_agent_status(
        &self,
        agent_id: &str,
        from: &[crate::store::AgentStatus],
        to: crate::store::AgentStatus,
        audit: &NewAuditRecord,
        now: UnixMillis,
    ) -> Result<bool> {
        self.inner.set_agent_status(agent_id, from, to, audit, now)
    }
    fn put_nonce(&self, nonce_hash: &str, expires_ms: UnixMillis, now: UnixMillis) -> Result<()> {
        self.inner.put_nonce(nonce_hash, expires_ms, now)
    }
    fn take_nonce(&self, nonce_hash: &str, now: UnixMillis) -> Result<bool> {
        self.inner.take_nonce(nonce_hash, now)
    }
    fn use_token_id(
        &self,
        issuer: &str,
        token_id: &str,
        expires_ms: UnixMillis,
        now: UnixMillis,
    ) -> Result<bool> {
        self.inner.use_token_id(issuer, token_id, expires_ms, now)
    }
    fn upsert_user(&self, user: &UserRecord) -> Result<()> {
        self.inner.upsert_user(user)
    }
    fn get_user(&self, user_id: &str) -> Result<Option<UserRecord>> {
        self.inner.get_user(user_id)
    }
    fn create_key(&self, key: &NewKey, now: UnixMillis) -> Result<KeyRecord> {
        self.inner.create_key(key, now)
    }
    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>> {
        self.inner.get_key(key_id)
    }
    fn find_keys(&self, query: &KeyQuery) -> Result<Vec<KeyRecord>> {
        self.inner.find_keys(query)
    }
    fn find_keys_page(
        &self,
        query: &KeyQuery,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<KeyRecord>> {
        self.inner.find_keys_page(query, after, limit)
    }
    fn commit(&self, mut work: UnitOfWork, now: UnixMillis) -> Result<Committed> {
        if work.bulk_fence.is_none() {
            work.bulk_fence = self.fence();
        }
        self.inner.commit(work, now)
    }
    fn list_passkeys(&self, key_id: &str) -> Result<Vec<PasskeyRecord>> {
        self.inner.list_passkeys(key_id)
    }
    fn passkeys_by_credential(&self, credential_id: &[u8]) -> Result<Vec<PasskeyRecord>> {
        self.inner.passkeys_by_credential(credential_id)
    }
    fn take_pending(
        &self,
        key_id: &str,
        passkey_template: &str,
    ) -> Result<Option<PendingRegistration>> {
        self.inner.take_pending(key_id, passkey_template)
    }
    fn pending_for_key(&self, key_id: &str) -> Result<Vec<PendingRegistration>> {
        self.inner.pending_for_key(key_id)
    }
    fn pending_expiring_before(&self, t: UnixMillis) -> Result<Vec<PendingRegistration>> {
        self.inner.pending_expiring_before(t)
    }
    fn pending_expiring_page(
        &self,
        t: UnixMillis,
        after: Option<PendingPosition<'_>>,
        limit: u32,
    ) -> Result<Vec<PendingRegistration>> {
        self.inner.pending_expiring_page(t, after, limit)
    }
    fn bulk_create(&self, job: &NewBulkJob, now: UnixMillis) -> Result<BulkJob> {
        self.inner.bulk_create(job, now)
    }
    fn bulk_job(&self, job_id: i64) -> Result<Option<BulkJob>> {
        self.inner.bulk_job(job_id)
    }
    fn bulk_open_job(&self, kind: &str, source_hash: &str) -> Result<Option<BulkJob>> {
        self.inner.bulk_open_job(kind, source_hash)
    }
    fn bulk_finish_job(&self, job_id: i64, now: UnixMillis) -> Result<bool> {
        self.inner.bulk_finish_job(job_id, now)
    }
    fn bulk_items(
        &self,
        job_id: i64,
        after_line: Option<u64>,
        limit: u32,
    ) -> Result<Vec<BulkItem>> {
        self.inner.bulk_items(job_id, after_line, limit)
    }
    fn bulk_set_item(
        &self,
        job_id: i64,
        line: u64,
        status: BulkItemStatus,
        outcome: Option<&str>,
        now: UnixMillis,
    ) -> Result<()> {
        self.inner.bulk_set_item(job_id, line, status, outcome, now)
    }
    fn bulk_claim_item(
        &self,
        job_id: i64,
        line: u64,
        seen_token: u64,
        seen_status: BulkItemStatus,
        owner: &str,
        now: UnixMillis,
        lease_ms: u64,
    ) -> Result<Option<BulkClaim>> {
        self.inner
            .bulk_claim_item(job_id, line, seen_token, seen_status, owner, now, lease_ms)
    }
    fn bulk_renew_claim(&self, fence: &BulkFence, now: UnixMillis, lease_ms: u64) -> Result<()> {
        self.inner.bulk_renew_claim(fence, now, lease_ms)
    }
    fn bulk_finish_item(
        &self,
        fence: &BulkFence,
        status: BulkItemStatus,
        outcome: Option<&str>,
        now: UnixMillis,
    ) -> Result<()> {
        self.inner.bulk_finish_item(fence, status, outcome, now)
    }
    fn bulk_fenced_put_transport_pin(
        &self,
        fence: &BulkFence,
        key_id: &str,
        pin: &TransportPin,
        host_key: &PinKey,
        now: UnixMillis,
    ) -> Result<()> {
        self.inner
            .bulk_fenced_put_transport_pin(fence, key_id, pin, host_key, now)
    }
    fn bulk_fenced_delete_transport_pin(&self, fence: &BulkFence, key_id: &str) -> Result<bool> {
        self.inner.bulk_fenced_delete_transport_pin(fence, key_id)
    }
    fn bulk_counts(&self, job_id: i64) -> Result<BulkCounts> {
        self.inner.bulk_counts(job_id)
    }
    fn query_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>> {
        self.inner.query_audit(query)
    }
    fn journal_claim(
        &self,
        id: i64,
        station: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<JournalEntry> {
        self.inner.journal_claim(id, station, now, lease_ms)
    }
    fn journal_renew(
        &self,
        id: i64,
        fence: &JournalFence,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<JournalEntry> {
        self.inner.journal_renew(id, fence, now, lease_ms)
    }
    fn journal_get(&self, id: i64) -> Result<Option<JournalEntry>> {
        self.inner.journal_get(id)
    }
    fn journal_unfinished(&self) -> Result<Vec<JournalEntry>> {
        self.inner.journal_unfinished()
    }
    fn put_transport_pin(
        &self,
        key_id: &str,
        pin: &TransportPin,
        host_key: &PinKey,
        now: UnixMillis,
    ) -> Result<()> {
        match self.fence() {
            Some(f) => self
                .inner
                .bulk_fenced_put_transport_pin(&f, key_id, pin, host_key, now),
            None => self.inner.put_transport_pin(key_id, pin, host_key, now),
        }
    }
    fn get_transport_pin(&self, key_id: &str, host_key: &PinKey) -> Result<Option<TransportPin>> {
        self.inner.get_transport_pin(key_id, host_key)
    }
    fn delete_transport_pin(&self, key_id: &str) -> Result<bool> {
        match self.fence() {
            Some(f) => self.inner.bulk_fenced_delete_transport_pin(&f, key_id),
            None => self.inner.delete_transport_pin(key_id),
        }
    }
}

/// What is learnt about passkeys after issuance is not written by bulk rows' own
/// commits: plain pass-through.
impl crate::store::watch::WatchStore for FencedStore {
    fn reissue_reason(&self, key_id: &str) -> Result<Option<crate::store::ReissueReason>> {
        self.inner.reissue_reason(key_id)
    }
    fn passkey_watch(&self, key_id: &str) -> Result<Vec<crate::store::PasskeyWatch>> {
        self.inner.passkey_watch(key_id)
    }
    fn note_user_name(
        &self,
        key_id: &str,
        passkey_template: &str,
        credential_id: &[u8],
        user_name: &str,
    ) -> Result<()> {
        self.inner
            .note_user_name(key_id, passkey_template, credential_id, user_name)
    }
    fn record_last_used(
        &self,
        key_id: &str,
        passkey_template: &str,
        credential_id: &[u8],
        last_used_ms: UnixMillis,
    ) -> Result<()> {
        self.inner
            .record_last_used(key_id, passkey_template, credential_id, last_used_ms)
    }
    fn unused_keys(&self, before_ms: UnixMillis) -> Result<Vec<crate::store::KeyUse>> {
        self.inner.unused_keys(before_ms)
    }
}

/// A journal entry appended claimed goes through this store's own append (so the bulk
/// fence is checked), then its claim; a sign-in's checks pass through.
impl crate::store::AtomicWrites for FencedStore {
    fn journal_append_claimed(
        &self,
        entry: &crate::store::NewJournalEntry,
        station: &str,
        now: UnixMillis,
        lease_ms: i64,
    ) -> Result<JournalEntry> {
        let e = self.journal_append(entry, now)?;
        self.journal_claim(e.id, station, now, lease_ms)
    }
    fn use_sign_in(
        &self,
        issuer: &str,
        token_id: &str,
        expires_ms: UnixMillis,
        nonce_hash: &str,
        now: UnixMillis,
    ) -> Result<(bool, bool)> {
        self.inner
            .use_sign_in(issuer, token_id, expires_ms, nonce_hash, now)
    }
}

/// The split deployment's tables are not written by bulk rows: plain pass-through.
impl crate::store::split::SplitStore for FencedStore {
    fn watch_sessions(&self, changed: crate::store::split::SessionChanged) -> Result<bool> {
        self.inner.watch_sessions(changed)
    }
    fn split_session_create(
        &self,
        session: &crate::store::split::SplitSession,
        now: UnixMillis,
    ) -> Result<()> {
        self.inner.split_session_create(session, now)
    }
    fn split_session_create_logged(
        &self,
        session: &crate::store::split::SplitSession,
        now: UnixMillis,
        log: &[crate::store::split::SplitMessage],
    ) -> Result<()> {
        self.inner.split_session_create_logged(session, now, log)
    }
    fn split_session_get(
        &self,
        session_id: &str,
    ) -> Result<Option<crate::store::split::SplitSession>> {
        self.inner.split_session_get(session_id)
    }
    fn split_session_update(
        &self,
        session: &crate::store::split::SplitSession,
        expected_version: u64,
        now: UnixMillis,
    ) -> Result<bool> {
        self.inner
            .split_session_update(session, expected_version, now)
    }
    fn split_log(&self, message: &crate::store::split::SplitMessage) -> Result<()> {
        self.inner.split_log(message)
    }
    fn split_session_update_logged(
        &self,
        session: &crate::store::split::SplitSession,
        expected_version: u64,
        now: UnixMillis,
        log: &[crate::store::split::SplitMessage],
    ) -> Result<bool> {
        self.inner
            .split_session_update_logged(session, expected_version, now, log)
    }
    fn split_messages(&self, session_id: &str) -> Result<Vec<crate::store::split::SplitMessage>> {
        self.inner.split_messages(session_id)
    }
    fn station_work_put(&self, work: &crate::store::split::StationWork) -> Result<()> {
        self.inner.station_work_put(work)
    }
    fn station_work_take(
        &self,
        agent_id: &str,
        session_id: &str,
        now: UnixMillis,
    ) -> Result<Option<crate::store::split::StationWork>> {
        self.inner.station_work_take(agent_id, session_id, now)
    }
    fn station_work_finish(
        &self,
        work_id: &str,
        state: crate::store::split::StationWorkState,
        outcome: &str,
        now: UnixMillis,
    ) -> Result<bool> {
        self.inner.station_work_finish(work_id, state, outcome, now)
    }
    fn station_work_get(&self, work_id: &str) -> Result<Option<crate::store::split::StationWork>> {
        self.inner.station_work_get(work_id)
    }
}
