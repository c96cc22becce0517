//! Cross-node wake-ups of the split deployment on PostgreSQL: `LISTEN`/`NOTIFY`.
//!
//! Every update of a split session notifies [`CHANNEL`] in its own transaction (so the
//! notification is delivered at commit, never for a change that rolled back), with the
//! payload `<origin>:<session id>`, `origin` the writing store's random token. A store
//! asked to watch ([`crate::store::split::SplitStore::watch_sessions`]) opens one more
//! connection, `LISTEN`s there from a thread of its own, and calls its watcher with the
//! id of each session *another* store changed: its own changes are rung inside the
//! process already. A lost connection is reopened, backing off up to [`MAX_BACKOFF`];
//! meanwhile the waiters' own periodic reads of the row cover the gap, as they do on a
//! backend without notifications. The thread ends within [`POLL`] of the store's drop.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config};
use rand_core::{OsRng, RngCore};

use crate::store::pg_tls::Tls;
use crate::store::split::SessionChanged;
use crate::store::{Result, StoreError};

/// The channel session updates notify (database-wide; the payload names the session).
pub(super) const CHANNEL: &str = "keysmith_split_session";
/// How often the listening thread looks whether its store is gone.
const POLL: Duration = Duration::from_millis(500);
/// The longest pause between two attempts to reopen a lost listening connection.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// A random token naming one store's connection in the notifications it sends.
pub(super) fn origin() -> String {
    let mut b = [0u8; 8];
    OsRng.fill_bytes(&mut b);
    base16ct::lower::encode_string(&b)
}

/// A store's watch: started at most once, stopped when the store is dropped.
#[derive(Default)]
pub(super) struct Watch {
    started: OnceLock<()>,
    stop: Arc<AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// What the listening thread needs to (re)open its connection.
pub(super) struct Listen {
    pub(super) config: Config,
    pub(super) tls: Tls,
    pub(super) origin: String,
}

impl Watch {
    /// Starts the listening thread unless one runs already (the first watcher stays).
    /// The first connection is opened here, so a caller learns of a failure to open it.
    pub(super) fn start(
        &self,
        listen: Listen,
        open: fn(&Config, &Tls) -> Result<Client>,
        changed: SessionChanged,
    ) -> Result<bool> {
        if self.started.get().is_some() {
            return Ok(true);
        }
        let client = connect(&listen, open)?;
        if self.started.set(()).is_err() {
            return Ok(true);
        }
        let stop = self.stop.clone();
        std::thread::Builder::new()
            .name("keysmith-pg-listen".into())
            .spawn(move || run(listen, open, client, &stop, &changed))
            .map_err(|e| StoreError::Backend(format!("postgres: listening thread: {e}")))?;
        Ok(true)
    }
}

fn connect(listen: &Listen, open: fn(&Config, &Tls) -> Result<Client>) -> Result<Client> {
    let mut client = open(&listen.config, &listen.tls)?;
    client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .map_err(|e| StoreError::Backend(format!("postgres: LISTEN: {e}")))?;
    Ok(client)
}

/// The listening loop: hands other stores' session ids to `changed` until `stop`.
fn run(
    listen: Listen,
    open: fn(&Config, &Tls) -> Result<Client>,
    client: Client,
    stop: &AtomicBool,
    changed: &SessionChanged,
) {
    let mut client = Some(client);
    let mut backoff = POLL;
    while !stop.load(Ordering::SeqCst) {
        let Some(c) = client.as_mut() else {
            // Reopen after a pause, looking at `stop` while waiting.
            let mut waited = Duration::ZERO;
            while waited < backoff && !stop.load(Ordering::SeqCst) {
                std::thread::sleep(POLL);
                waited += POLL;
            }
            match connect(&listen, open) {
                Ok(c) => {
                    tracing::info!("split session notifications: listening again");
                    client = Some(c);
                    backoff = POLL;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "split session notifications: reconnect failed");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
            continue;
        };
        let mut lost = false;
        {
            let mut notes = c.notifications();
            let mut it = notes.timeout_iter(POLL);
            loop {
                match it.next() {
                    // The pause ran out: look at `stop`, then listen on.
                    Ok(None) => break,
                    Ok(Some(n)) if n.channel() == CHANNEL => {
                        if let Some((from, session)) = n.payload().split_once(':') {
                            if from != listen.origin {
                                changed(session);
                            }
                        }
                    }
                    Ok(Some(_)) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "split session notifications: connection lost");
                        lost = true;
                        break;
                    }
                }
            }
        }
        if lost || c.is_closed() {
            client = None;
        }
    }
}
