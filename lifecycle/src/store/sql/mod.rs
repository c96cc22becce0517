//! Backend-neutral store logic over a tiny SQL abstraction.
//!
//! Both backends implement [`Sql`] for an open transaction; everything else (schema,
//! migrations, queries, compare-and-set, journal rules) is written once here. SQL uses
//! `$1`-style placeholders in ascending first-use order and only types both dialects
//! share (TEXT, BIGINT, blobs); DDL differences are the `{ID}` and `{BLOB}` substitutions.

use super::crypto;
pub(crate) use super::crypto::rowmac::RowKey;
use super::crypto::rowmac::{audit_hash, Field, AUDIT_GENESIS};
use super::{
    AdoptedRows, AuditBreak, AuditQuery, AuditRecord, AuditVerification, BulkCounts, BulkItem,
    BulkItemStatus, BulkJob, Committed, JournalClose, JournalEntry, JournalFence, JournalOp,
    JournalStatus, KeyQuery, KeyRecord, NewAuditRecord, NewBulkJob, NewJournalEntry, NewKey,
    PasskeyRecord, PendingPosition, PendingRegistration, PinKey, Result, StoreError, Transition,
    TransportPin, UnitOfWork, UnixMillis, UserRecord,
};
use crate::model::CredentialState;

mod adopt;
mod agents;
mod audit;
mod bulk;
mod journal;
mod keys;
mod records;
mod schema;
mod selfservice;
mod split;
mod store_impl;
mod watch;

pub(crate) use adopt::*;
pub(crate) use agents::*;
pub(crate) use audit::*;
pub(crate) use bulk::*;
pub(crate) use journal::*;
pub(crate) use keys::*;
use records::*;
pub(crate) use schema::*;
pub(crate) use selfservice::*;
pub(crate) use split::*;
pub(crate) use store_impl::impl_store;
pub(crate) use watch::*;

/// A bound parameter (typed even when NULL, for PostgreSQL).
#[derive(Clone, Debug)]
pub(crate) enum Param {
    /// BIGINT.
    Int(Option<i64>),
    /// TEXT.
    Text(Option<String>),
    /// Blob (BLOB / BYTEA).
    Blob(Option<Vec<u8>>),
}

impl Param {
    /// A TEXT value.
    fn text(s: &str) -> Param {
        Param::Text(Some(s.to_owned()))
    }
    /// A TEXT value or NULL.
    fn opt_text(s: &Option<String>) -> Param {
        Param::Text(s.clone())
    }
    /// A BIGINT value.
    fn int(v: i64) -> Param {
        Param::Int(Some(v))
    }
    /// A time, stored as BIGINT (times past `i64::MAX` ms, far beyond any clock, clamp).
    fn millis(t: UnixMillis) -> Param {
        Param::Int(Some(i64::try_from(t).unwrap_or(i64::MAX)))
    }
    /// A blob value.
    fn blob(v: &[u8]) -> Param {
        Param::Blob(Some(v.to_vec()))
    }
}

/// A result cell.
#[derive(Clone, Debug)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

/// One open transaction of a backend.
pub(crate) trait Sql {
    /// Runs a statement; returns affected rows.
    fn exec(&mut self, sql: &str, params: &[Param]) -> Result<u64>;
    /// Runs a query; returns all rows.
    fn query(&mut self, sql: &str, params: &[Param]) -> Result<Vec<Row>>;
    /// Takes the lock that serialises audit appends until the transaction ends, so two
    /// writers never chain to the same previous record. SQLite needs nothing: its write
    /// transactions are immediate, one writer at a time.
    fn lock_audit(&mut self) -> Result<()> {
        Ok(())
    }
    /// Tells other connections, at commit, that split session `session_id` changed
    /// (PostgreSQL: `NOTIFY`). SQLite needs nothing: its server is one process, whose
    /// waiters are rung in-process.
    fn notify_session(&mut self, _session_id: &str) -> Result<()> {
        Ok(())
    }
}

/// Which SQL dialect the DDL is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// A result row with typed, field-naming accessors.
#[derive(Clone, Debug)]
pub(crate) struct Row(pub(crate) Vec<Cell>);

impl Row {
    fn cell(&self, i: usize, field: &str) -> Result<&Cell> {
        self.0.get(i).ok_or_else(|| StoreError::Corrupt {
            what: format!("{field}: column {i} missing"),
        })
    }
    fn text(&self, i: usize, field: &str) -> Result<String> {
        match self.cell(i, field)? {
            Cell::Text(s) => Ok(s.clone()),
            other => Err(wrong(field, "text", other)),
        }
    }
    fn opt_text(&self, i: usize, field: &str) -> Result<Option<String>> {
        match self.cell(i, field)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            other => Err(wrong(field, "text or null", other)),
        }
    }
    fn int(&self, i: usize, field: &str) -> Result<i64> {
        match self.cell(i, field)? {
            Cell::Int(v) => Ok(*v),
            other => Err(wrong(field, "integer", other)),
        }
    }
    fn uint(&self, i: usize, field: &str) -> Result<u64> {
        let v = self.int(i, field)?;
        u64::try_from(v).map_err(|_| StoreError::Corrupt {
            what: format!("{field}: negative value {v}"),
        })
    }
    fn bytes(&self, i: usize, field: &str) -> Result<Vec<u8>> {
        match self.cell(i, field)? {
            Cell::Blob(b) => Ok(b.clone()),
            other => Err(wrong(field, "bytes", other)),
        }
    }
    fn state(&self, i: usize, field: &str) -> Result<CredentialState> {
        let s = self.text(i, field)?;
        s.parse().map_err(|_| StoreError::Corrupt {
            what: format!("{field}: unknown state {s:?}"),
        })
    }
}

fn wrong(field: &str, expected: &str, found: &Cell) -> StoreError {
    let found = match found {
        Cell::Null => "null",
        Cell::Int(_) => "integer",
        Cell::Text(_) => "text",
        Cell::Blob(_) => "bytes",
    };
    StoreError::Corrupt {
        what: format!("{field}: expected {expected}, found {found}"),
    }
}

fn ver(v: u64, field: &'static str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Invalid {
        field,
        reason: format!("{v} exceeds i64"),
    })
}
