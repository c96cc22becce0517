//! The `Store` implementation every backend gets from its `Sql` transactions.

/// Implements [`crate::store::Store`] for a backend type with a method
/// `fn tx<T>(&self, f: impl FnOnce(&mut dyn Sql) -> Result<T>) -> Result<T>` (a write
/// transaction), a method `read` of the same shape (a read-only one) and a field
/// `row_key: RowKeySlot` (the row-authentication key the engine installs).
macro_rules! impl_store {
    ($ty:ty) => {
        impl $crate::store::Store for $ty {
            fn schema_version(&self) -> $crate::store::Result<u32> {
                self.read(|s| $crate::store::sql::schema_version(s))
            }
            fn check_integrity(&self) -> $crate::store::Result<()> {
                self.integrity_check()
            }
            fn upsert_user(&self, user: &$crate::store::UserRecord) -> $crate::store::Result<()> {
                self.tx(|s| $crate::store::sql::upsert_user(s, user))
            }
            fn get_user(
                &self,
                user_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::UserRecord>> {
                self.read(|s| $crate::store::sql::get_user(s, user_id))
            }
            fn create_key(
                &self,
                key: &$crate::store::NewKey,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<$crate::store::KeyRecord> {
                self.tx(|s| $crate::store::sql::create_key(s, key, now))
            }
            fn get_key(
                &self,
                key_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::KeyRecord>> {
                self.read(|s| $crate::store::sql::get_key(s, key_id))
            }
            fn find_keys(
                &self,
                query: &$crate::store::KeyQuery,
            ) -> $crate::store::Result<Vec<$crate::store::KeyRecord>> {
                self.read(|s| $crate::store::sql::find_keys(s, query))
            }
            fn find_keys_page(
                &self,
                query: &$crate::store::KeyQuery,
                after: Option<&str>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::KeyRecord>> {
                self.read(|s| $crate::store::sql::find_keys_page(s, query, after, limit))
            }
            fn pending_expiring_page(
                &self,
                t: $crate::store::UnixMillis,
                after: Option<$crate::store::PendingPosition<'_>>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::PendingRegistration>> {
                {
                    let k = self.row_key.get();
                    self.read(|s| {
                        $crate::store::sql::pending_expiring_page(s, k.as_deref(), t, after, limit)
                    })
                }
            }
            fn passkeys_by_credential(
                &self,
                credential_id: &[u8],
            ) -> $crate::store::Result<Vec<$crate::store::PasskeyRecord>> {
                {
                    let k = self.row_key.get();
                    self.read(|s| {
                        $crate::store::sql::passkeys_by_credential(s, k.as_deref(), credential_id)
                    })
                }
            }
            fn bulk_create(
                &self,
                job: &$crate::store::NewBulkJob,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<$crate::store::BulkJob> {
                self.tx(|s| $crate::store::sql::bulk_create(s, job, now))
            }
            fn bulk_job(
                &self,
                job_id: i64,
            ) -> $crate::store::Result<Option<$crate::store::BulkJob>> {
                self.read(|s| $crate::store::sql::bulk_job(s, job_id))
            }
            fn bulk_open_job(
                &self,
                kind: &str,
                source_hash: &str,
            ) -> $crate::store::Result<Option<$crate::store::BulkJob>> {
                self.read(|s| $crate::store::sql::bulk_open_job(s, kind, source_hash))
            }
            fn bulk_finish_job(
                &self,
                job_id: i64,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<bool> {
                self.tx(|s| $crate::store::sql::bulk_finish_job(s, job_id, now))
            }
            fn bulk_claim_item(
                &self,
                job_id: i64,
                line: u64,
                seen_token: u64,
                seen_status: $crate::store::BulkItemStatus,
                owner: &str,
                now: $crate::store::UnixMillis,
                lease_ms: u64,
            ) -> $crate::store::Result<Option<$crate::store::BulkClaim>> {
                self.tx(|s| {
                    $crate::store::sql::bulk_claim_item(
                        s,
                        job_id,
                        line,
                        seen_token,
                        seen_status,
                        owner,
                        now,
                        lease_ms,
                    )
                })
            }
            fn bulk_renew_claim(
                &self,
                fence: &$crate::store::BulkFence,
                now: $crate::store::UnixMillis,
                lease_ms: u64,
            ) -> $crate::store::Result<()> {
                self.tx(|s| $crate::store::sql::bulk_renew_claim(s, fence, now, lease_ms))
            }
            fn bulk_finish_item(
                &self,
                fence: &$crate::store::BulkFence,
                status: $crate::store::BulkItemStatus,
                outcome: Option<&str>,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                self.tx(|s| $crate::store::sql::bulk_finish_item(s, fence, status, outcome, now))
            }
            fn bulk_fenced_put_transport_pin(
                &self,
                fence: &$crate::store::BulkFence,
                key_id: &str,
                pin: &$crate::store::TransportPin,
                host_key: &$crate::store::PinKey,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                self.tx(|s| {
                    $crate::store::sql::bulk_check_fence(s, fence)?;
                    $crate::store::sql::put_transport_pin(s, key_id, pin, host_key, now)
                })
            }
            fn bulk_fenced_delete_transport_pin(
                &self,
                fence: &$crate::store::BulkFence,
                key_id: &str,
            ) -> $crate::store::Result<bool> {
                self.tx(|s| {
                    $crate::store::sql::bulk_check_fence(s, fence)?;
                    $crate::store::sql::delete_transport_pin(s, key_id)
                })
            }
            fn bulk_items(
                &self,
                job_id: i64,
                after_line: Option<u64>,
                limit: u32,
            ) -> $crate::store::Result<Vec<$crate::store::BulkItem>> {
                self.read(|s| $crate::store::sql::bulk_items(s, job_id, after_line, limit))
            }
            fn bulk_set_item(
                &self,
                job_id: i64,
                line: u64,
                status: $crate::store::BulkItemStatus,
                outcome: Option<&str>,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                self.tx(|s| {
                    $crate::store::sql::bulk_set_item(s, job_id, line, status, outcome, now)
                })
            }
            fn bulk_counts(&self, job_id: i64) -> $crate::store::Result<$crate::store::BulkCounts> {
                self.read(|s| $crate::store::sql::bulk_counts(s, job_id))
            }
            fn commit(
                &self,
                work: $crate::store::UnitOfWork,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<$crate::store::Committed> {
                {
                    let k = self.row_key.get();
                    self.tx(|s| $crate::store::sql::commit(s, k.as_deref(), &work, now))
                }
            }
            fn list_passkeys(
                &self,
                key_id: &str,
            ) -> $crate::store::Result<Vec<$crate::store::PasskeyRecord>> {
                {
                    let k = self.row_key.get();
                    self.read(|s| $crate::store::sql::list_passkeys(s, k.as_deref(), key_id))
                }
            }
            fn take_pending(
                &self,
                key_id: &str,
                passkey_template: &str,
            ) -> $crate::store::Result<Option<$crate::store::PendingRegistration>> {
                {
                    let k = self.row_key.get();
                    self.tx(|s| {
                        $crate::store::sql::take_pending(s, k.as_deref(), key_id, passkey_template)
                    })
                }
            }
            fn pending_for_key(
                &self,
                key_id: &str,
            ) -> $crate::store::Result<Vec<$crate::store::PendingRegistration>> {
                {
                    let k = self.row_key.get();
                    self.read(|s| $crate::store::sql::pending_for_key(s, k.as_deref(), key_id))
                }
            }
            fn pending_expiring_before(
                &self,
                t: $crate::store::UnixMillis,
            ) -> $crate::store::Result<Vec<$crate::store::PendingRegistration>> {
                {
                    let k = self.row_key.get();
                    self.read(|s| $crate::store::sql::pending_expiring_before(s, k.as_deref(), t))
                }
            }
            fn query_audit(
                &self,
                query: &$crate::store::AuditQuery,
            ) -> $crate::store::Result<Vec<$crate::store::AuditRecord>> {
                self.read(|s| $crate::store::sql::query_audit(s, query))
            }
            fn verify_audit(
                &self,
                host_key: &$crate::store::PinKey,
            ) -> $crate::store::Result<$crate::store::AuditVerification> {
                let k = $crate::store::sql::RowKey::derive(host_key);
                self.read(|s| $crate::store::sql::verify_audit(s, &k))
            }
            fn adopt_unauthenticated_rows(
                &self,
                host_key: &$crate::store::PinKey,
                actor: &str,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<$crate::store::AdoptedRows> {
                let k = $crate::store::sql::RowKey::derive(host_key);
                self.tx(|s| $crate::store::sql::adopt_unauthenticated_rows(s, &k, actor, now))
            }
            fn set_row_key(&self, host_key: &$crate::store::PinKey) {
                self.row_key.set(host_key);
            }
            fn journal_claim(
                &self,
                id: i64,
                station: &str,
                now: $crate::store::UnixMillis,
                lease_ms: i64,
            ) -> $crate::store::Result<$crate::store::JournalEntry> {
                {
                    let k = self.row_key.get();
                    self.tx(|s| {
                        $crate::store::sql::journal_claim(
                            s,
                            k.as_deref(),
                            id,
                            station,
                            now,
                            lease_ms,
                        )
                    })
                }
            }
            fn journal_renew(
                &self,
                id: i64,
                fence: &$crate::store::JournalFence,
                now: $crate::store::UnixMillis,
                lease_ms: i64,
            ) -> $crate::store::Result<$crate::store::JournalEntry> {
                self.tx(|s| $crate::store::sql::journal_renew(s, id, fence, now, lease_ms))
            }
            fn journal_get(
                &self,
                id: i64,
            ) -> $crate::store::Result<Option<$crate::store::JournalEntry>> {
                self.read(|s| $crate::store::sql::journal_get(s, id))
            }
            fn journal_unfinished(
                &self,
            ) -> $crate::store::Result<Vec<$crate::store::JournalEntry>> {
                self.read(|s| $crate::store::sql::journal_unfinished(s))
            }
            fn put_transport_pin(
                &self,
                key_id: &str,
                pin: &$crate::store::TransportPin,
                host_key: &$crate::store::PinKey,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                self.tx(|s| $crate::store::sql::put_transport_pin(s, key_id, pin, host_key, now))
            }
            fn get_transport_pin(
                &self,
                key_id: &str,
                host_key: &$crate::store::PinKey,
            ) -> $crate::store::Result<Option<$crate::store::TransportPin>> {
                self.read(|s| $crate::store::sql::get_transport_pin(s, key_id, host_key))
            }
            fn put_nonce(
                &self,
                nonce_hash: &str,
                expires_ms: $crate::store::UnixMillis,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<()> {
                self.tx(|s| $crate::store::sql::put_nonce(s, nonce_hash, expires_ms, now))
            }
            fn take_nonce(
                &self,
                nonce_hash: &str,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<bool> {
                self.tx(|s| $crate::store::sql::take_nonce(s, nonce_hash, now))
            }
            fn use_token_id(
                &self,
                issuer: &str,
                token_id: &str,
                expires_ms: $crate::store::UnixMillis,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<bool> {
                self.tx(|s| $crate::store::sql::use_token_id(s, issuer, token_id, expires_ms, now))
            }
            fn put_enrolment_code(
                &self,
                code: &$crate::store::EnrolmentCode,
                audit: &$crate::store::NewAuditRecord,
            ) -> $crate::store::Result<()> {
                let k = self.row_key.get();
                self.tx(|s| $crate::store::sql::put_enrolment_code(s, k.as_deref(), code, audit))
            }
            fn open_enrolment_codes(
                &self,
                station: &str,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<Vec<$crate::store::EnrolmentCode>> {
                let k = self.row_key.get();
                self.read(|s| $crate::store::sql::open_codes(s, k.as_deref(), station, now))
            }
            fn enrol_agent(
                &self,
                agent: &$crate::store::AgentRecord,
                code_id: Option<&str>,
                audit: &$crate::store::NewAuditRecord,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<bool> {
                let k = self.row_key.get();
                self.tx(|s| {
                    $crate::store::sql::enrol_agent(s, k.as_deref(), agent, code_id, audit, now)
                })
            }
            fn get_agent(
                &self,
                agent_id: &str,
            ) -> $crate::store::Result<Option<$crate::store::AgentRecord>> {
                let k = self.row_key.get();
                self.read(|s| $crate::store::sql::get_agent(s, k.as_deref(), agent_id))
            }
            fn list_agents(&self) -> $crate::store::Result<Vec<$crate::store::AgentRecord>> {
                let k = self.row_key.get();
                self.read(|s| $crate::store::sql::list_agents(s, k.as_deref()))
            }
            fn set_agent_status(
                &self,
                agent_id: &str,
                from: &[$crate::store::AgentStatus],
                to: $crate::store::AgentStatus,
                audit: &$crate::store::NewAuditRecord,
                now: $crate::store::UnixMillis,
            ) -> $crate::store::Result<bool> {
                let k = self.row_key.get();
                self.tx(|s| {
                    $crate::store::sql::set_agent_status(
                        s,
                        k.as_deref(),
                        agent_id,
                        from,
                        to,
                        audit,
                        now,
                    )
                })
            }
            fn delete_transport_pin(&self, key_id: &str) -> $crate::store::Result<bool> {
                self.tx(|s| $crate::store::sql::delete_transport_pin(s, key_id))
            }
        }
    };
}
pub(crate) use impl_store;
