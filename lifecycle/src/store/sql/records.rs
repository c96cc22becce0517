//! Row decoding: the column lists and the record each row becomes.

use super::*;

pub(super) const KEY_COLS: &str =
    "key_id, aaguid, serial, state, user_id, template_id, needs_reissue, \
                        version, created_ms, updated_ms";

pub(super) fn key_from(row: &Row) -> Result<KeyRecord> {
    let aaguid = row.bytes(1, "keys.aaguid")?;
    let aaguid: [u8; 16] = aaguid
        .as_slice()
        .try_into()
        .map_err(|_| StoreError::Corrupt {
            what: format!("keys.aaguid: {} bytes, expected 16", aaguid.len()),
        })?;
    Ok(KeyRecord {
        key_id: row.text(0, "keys.key_id")?,
        aaguid,
        serial: row.text(2, "keys.serial")?,
        state: row.state(3, "keys.state")?,
        user_id: row.opt_text(4, "keys.user_id")?,
        template_id: row.opt_text(5, "keys.template_id")?,
        needs_reissue: row.int(6, "keys.needs_reissue")? != 0,
        version: row.uint(7, "keys.version")?,
        created_ms: row.uint(8, "keys.created_ms")?,
        updated_ms: row.uint(9, "keys.updated_ms")?,
    })
}

pub(super) const PASSKEY_COLS: &str =
    "key_id, passkey_template, credential_id, public_key, idp_method_id, state, created_ms";

pub(super) fn passkey_from(row: &Row) -> Result<PasskeyRecord> {
    Ok(PasskeyRecord {
        key_id: row.text(0, "passkeys.key_id")?,
        passkey_template: row.text(1, "passkeys.passkey_template")?,
        credential_id: row.bytes(2, "passkeys.credential_id")?,
        public_key: row.bytes(3, "passkeys.public_key")?,
        idp_method_id: row.opt_text(4, "passkeys.idp_method_id")?,
        state: row.state(5, "passkeys.state")?,
        created_ms: row.uint(6, "passkeys.created_ms")?,
    })
}

pub(super) const PENDING_COLS: &str =
    "key_id, passkey_template, user_id, attestation_object, client_data_json, \
                            challenge_expires_ms, created_ms";

pub(super) fn pending_from(row: &Row) -> Result<PendingRegistration> {
    Ok(PendingRegistration {
        key_id: row.text(0, "pending.key_id")?,
        passkey_template: row.text(1, "pending.passkey_template")?,
        user_id: row.text(2, "pending.user_id")?,
        attestation_object: row.bytes(3, "pending.attestation_object")?,
        client_data_json: row.bytes(4, "pending.client_data_json")?,
        challenge_expires_ms: row.uint(5, "pending.challenge_expires_ms")?,
        created_ms: row.uint(6, "pending.created_ms")?,
    })
}

pub(super) const AUDIT_COLS: &str =
    "id, actor, time_ms, action, key_id, user_id, template_id, outcome, \
                          idp_request_id, detail";

pub(super) fn audit_from(row: &Row) -> Result<AuditRecord> {
    Ok(AuditRecord {
        id: row.int(0, "audit.id")?,
        event: NewAuditRecord {
            actor: row.text(1, "audit.actor")?,
            time_ms: row.uint(2, "audit.time_ms")?,
            action: row.text(3, "audit.action")?,
            key_id: row.opt_text(4, "audit.key_id")?,
            user_id: row.opt_text(5, "audit.user_id")?,
            template_id: row.opt_text(6, "audit.template_id")?,
            outcome: row.text(7, "audit.outcome")?,
            idp_request_id: row.opt_text(8, "audit.idp_request_id")?,
            detail: row.opt_text(9, "audit.detail")?,
        },
    })
}

pub(super) const JOURNAL_COLS: &str =
    "id, key_id, idp, operation, payload, status, attempts, result, \
                            created_ms, updated_ms, claimed_by, claimed_until_ms";

pub(super) fn journal_from(row: &Row) -> Result<JournalEntry> {
    let op = row.text(3, "journal.operation")?;
    let status = row.text(5, "journal.status")?;
    let attempts = row.uint(6, "journal.attempts")?;
    Ok(JournalEntry {
        id: row.int(0, "journal.id")?,
        key_id: row.text(1, "journal.key_id")?,
        idp: row.text(2, "journal.idp")?,
        operation: JournalOp::parse(&op).ok_or_else(|| StoreError::Corrupt {
            what: format!("journal.operation: unknown {op:?}"),
        })?,
        payload: row.bytes(4, "journal.payload")?,
        status: JournalStatus::parse(&status).ok_or_else(|| StoreError::Corrupt {
            what: format!("journal.status: unknown {status:?}"),
        })?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt {
            what: format!("journal.attempts: {attempts} out of range"),
        })?,
        result: row.opt_text(7, "journal.result")?,
        created_ms: row.uint(8, "journal.created_ms")?,
        updated_ms: row.uint(9, "journal.updated_ms")?,
        claimed_by: row.opt_text(10, "journal.claimed_by")?,
        claimed_until_ms: row.uint(11, "journal.claimed_until_ms")?,
    })
}

pub(super) fn rows_to<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T>) -> Result<Vec<T>> {
    rows.iter().map(f).collect()
}

pub(super) fn first<T>(rows: Vec<Row>, f: fn(&Row) -> Result<T>) -> Result<Option<T>> {
    rows.first().map(f).transpose()
}
