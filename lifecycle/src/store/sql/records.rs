//! Row decoding: the column lists and the record each row becomes; the fields each
//! authenticated row's MAC covers, and its check on read.

use super::*;
use crate::store::crypto::rowmac::{Field, RowKey};

pub(super) const KEY_COLS: &str =
    "key_id, aaguid, serial, state, user_id, template_id, needs_reissue, \
                        version, created_ms, updated_ms, identity, serial_source";

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
        identity: row.opt_text(10, "keys.identity")?,
        serial_source: row.opt_text(11, "keys.serial_source")?,
    })
}

pub(super) const PASSKEY_COLS: &str =
    "key_id, passkey_template, credential_id, public_key, idp_method_id, state, created_ms, mac";

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
                            challenge_expires_ms, created_ms, mac, key_version, display_name";

pub(super) fn pending_from(row: &Row) -> Result<PendingRegistration> {
    Ok(PendingRegistration {
        key_id: row.text(0, "pending.key_id")?,
        passkey_template: row.text(1, "pending.passkey_template")?,
        user_id: row.text(2, "pending.user_id")?,
        attestation_object: row.bytes(3, "pending.attestation_object")?,
        client_data_json: row.bytes(4, "pending.client_data_json")?,
        challenge_expires_ms: row.uint(5, "pending.challenge_expires_ms")?,
        created_ms: row.uint(6, "pending.created_ms")?,
        display_name: row.opt_text(9, "pending.display_name")?,
    })
}

pub(super) const AUDIT_COLS: &str =
    "id, actor, time_ms, action, key_id, user_id, template_id, outcome, \
                          idp_request_id, detail, hash, mac";

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
                            created_ms, updated_ms, claimed_by, claimed_until_ms, mac";

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

/// A blob column that may be NULL.
pub(super) fn opt_bytes(row: &Row, i: usize, field: &str) -> Result<Option<Vec<u8>>> {
    match row.cell(i, field)? {
        Cell::Null => Ok(None),
        Cell::Blob(b) => Ok(Some(b.clone())),
        other => Err(wrong(field, "bytes or null", other)),
    }
}

/// A passkey row's MAC fields: its identity, public key, IdP method id, state and time.
fn passkey_fields(p: &PasskeyRecord) -> [Field<'_>; 7] {
    [
        Field::Text(&p.key_id),
        Field::Text(&p.passkey_template),
        Field::Bytes(&p.credential_id),
        Field::Digest(&p.public_key),
        Field::OptText(p.idp_method_id.as_deref()),
        Field::Text(p.state.as_str()),
        Field::Uint(p.created_ms),
    ]
}

/// The MAC of a passkey row.
pub(super) fn passkey_mac(k: &RowKey, p: &PasskeyRecord) -> Vec<u8> {
    k.seal_row("passkey", &passkey_fields(p))
}

/// Passkey rows, each checked against its MAC when a row key is installed.
pub(super) fn passkeys_checked(rows: Vec<Row>, k: Option<&RowKey>) -> Result<Vec<PasskeyRecord>> {
    rows.iter()
        .map(|r| {
            let p = passkey_from(r)?;
            if let Some(k) = k {
                let mac = opt_bytes(r, 7, "passkeys.mac")?;
                k.check_row(
                    || {
                        format!(
                            "passkey of key {} (template {})",
                            p.key_id, p.passkey_template
                        )
                    },
                    mac.as_deref(),
                    "passkey",
                    &passkey_fields(&p),
                )?;
            }
            Ok(p)
        })
        .collect()
}

/// The pending row's MAC fields: key, template, user, digests of the attestation object
/// and clientDataJSON, challenge expiry, time and the key's version when it was written,
/// then the display name when the row has one (schema 15). Absent, the fields are those
/// of the rows written before, so their MACs still hold; the encoding is length-prefixed,
/// so a name cannot be added to or removed from a row without breaking its MAC.
fn pending_fields<'a>(p: &'a PendingRegistration, key_version: Option<u64>) -> Vec<Field<'a>> {
    let mut fields = vec![
        Field::Text(&p.key_id),
        Field::Text(&p.passkey_template),
        Field::Text(&p.user_id),
        Field::Digest(&p.attestation_object),
        Field::Digest(&p.client_data_json),
        Field::Uint(p.challenge_expires_ms),
        Field::Uint(p.created_ms),
        Field::Uint(key_version.unwrap_or(0)),
    ];
    if let Some(name) = &p.display_name {
        fields.push(Field::Text(name));
    }
    fields
}

/// The MAC of a pending registration written at key version `key_version`.
pub(super) fn pending_mac(k: &RowKey, p: &PendingRegistration, key_version: u64) -> Vec<u8> {
    k.seal_row("pending", &pending_fields(p, Some(key_version)))
}

/// Pending rows, each checked against its MAC when a row key is installed.
pub(super) fn pending_checked(
    rows: Vec<Row>,
    k: Option<&RowKey>,
) -> Result<Vec<PendingRegistration>> {
    rows.iter()
        .map(|r| {
            let p = pending_from(r)?;
            if let Some(k) = k {
                let mac = opt_bytes(r, 7, "pending.mac")?;
                let version = match r.cell(8, "pending.key_version")? {
                    Cell::Null => None,
                    _ => Some(r.uint(8, "pending.key_version")?),
                };
                k.check_row(
                    || {
                        format!(
                            "pending registration of key {} (template {})",
                            p.key_id, p.passkey_template
                        )
                    },
                    mac.as_deref(),
                    "pending",
                    &pending_fields(&p, version),
                )?;
            }
            Ok(p)
        })
        .collect()
}

fn journal_fields(e: &JournalEntry) -> [Field<'_>; 6] {
    [
        Field::Int(e.id),
        Field::Text(&e.key_id),
        Field::Text(&e.idp),
        Field::Text(e.operation.as_str()),
        Field::Digest(&e.payload),
        Field::Uint(e.created_ms),
    ]
}

/// The MAC of a journal entry: its id, key, IdP, operation, payload digest and time.
pub(super) fn journal_mac(k: &RowKey, e: &JournalEntry) -> Vec<u8> {
    k.seal_row("journal", &journal_fields(e))
}

/// A journal row, checked against its MAC when a row key is installed.
pub(super) fn journal_checked(r: &Row, k: Option<&RowKey>) -> Result<JournalEntry> {
    let e = journal_from(r)?;
    if let Some(k) = k {
        let mac = opt_bytes(r, 12, "journal.mac")?;
        k.check_row(
            || {
                format!(
                    "journal entry {} ({} of key {})",
                    e.id,
                    e.operation.as_str(),
                    e.key_id
                )
            },
            mac.as_deref(),
            "journal",
            &journal_fields(&e),
        )?;
    }
    Ok(e)
}
