//! The session: one engine over one repository, its IdP connections and templates.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, PoisonError, RwLock};

use lifecycle::engine::{BulkKind, DevicePrompt, Engine, IssueRequest, ReconcileOptions};
use lifecycle::model::CredentialState;
use lifecycle::store::KeyQuery;
use lifecycle::template::KeyTransport;
use lifecycle::template::TemplateSet;

mod bulk;
mod passkeys;

pub use bulk::BulkStop;
pub use passkeys::{
    ConnectionFailure, ReadinessReport, ReadinessUser, ReissueEntry, StaleEntry, UserFailure,
    UserPasskey, UserPasskeys,
};

use crate::config::SessionConfig;
use crate::device::DeviceState;
use crate::types::{IssueParams, KeyFilter, ReissueParams};
use crate::{
    config, now_ms, parse_template, AdoptedRows, AuditCheck, AuditEntry, BulkJob, BulkProgress,
    BulkRow, BulkRunOptions, BulkSummary, Device, ExpiringCursor, ExpiringPage, ExpiringPending,
    FacadeError, Key, KeyDetails, KeyPage, Prompt, ReconcileReport, ReplayedEntry, Result,
    SelfServiceStart, SignInResult, TemplateSummary, User,
};

/// Largest CSV text a bulk job takes (bytes).
pub const MAX_BULK_CSV_BYTES: usize = 16 * 1024 * 1024;
/// Most worker threads of a bulk run.
pub const MAX_WORKERS: usize = 32;
/// Most keys in one page of [`Session::list_keys_page`].
pub const MAX_PAGE: u32 = 1000;
/// Lowest `rate` (IdP calls per second) a bulk run takes: one call every 10 seconds. A
/// lower ceiling is a mistake (1e-300 would wait an hour before every call).
pub const MIN_RATE: f64 = 0.1;

/// The serial, if it may become part of a key id (see [`lifecycle::model::check_serial`]).
fn checked_serial(serial: String) -> Result<String> {
    match lifecycle::model::check_serial(&serial) {
        Ok(()) => Ok(serial),
        Err(why) => {
            Err(FacadeError::usage(format!("serial {serial:?} {why}"))
                .with_reason("serial_invalid"))
        }
    }
}

/// The user of an issuance, if it can name a directory user: not blank, no control
/// characters (an empty one used to reach the IdP as the users collection and come
/// back as "idp_unreachable: missing field `id`").
fn checked_user(user: &str) -> Result<String> {
    let why = if user.trim().is_empty() {
        "must not be empty"
    } else if user.chars().any(char::is_control) {
        "must not contain control characters"
    } else {
        return Ok(user.to_owned());
    };
    Err(
        FacadeError::usage(format!("user {user:?}: {why} (a UPN or object id)"))
            .with_reason("user_invalid"),
    )
}

/// Receives "touch your key" and fingerprint prompts (see [`Session::set_prompt`]).
pub type PromptCallback = Box<dyn Fn(&Prompt) + Send + Sync>;

type SharedCallback = Arc<dyn Fn(&Prompt) + Send + Sync>;

struct Inner {
    engine: Arc<Engine>,
    prompt: Arc<RwLock<Option<SharedCallback>>>,
    templates: RwLock<BTreeMap<String, TemplateSet>>,
    connections: Vec<String>,
    /// `allow_software_keys` from the config.
    allow_software_keys: bool,
}

/// An open session: the lifecycle engine over its repository, IdP connections and
/// templates. A clone-able handle (`Send + Sync`); clones share the session.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
    /// The actor recorded for this handle's operator calls ([`Session::with_actor`]).
    actor: Arc<str>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("actor", &self.actor)
            .field("connections", &self.inner.connections)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// Opens a session from its JSON configuration:
    ///
    /// ```json
    /// {
    ///   "repository": {"sqlite": "/var/lib/keysmith.db"},   // or {"postgres": "postgres://...", "schema": optional}
    ///   "pin_key": "<64 hex digits: the host key sealing transport PINs>",
    ///   "station": "cms-1",                  // optional
    ///   "actor": "operator:alice",           // optional, default operator:<station>
    ///   "idp": [{"name": "contoso-entra", "tenant": "...", "client_id": "...",
    ///            "client_secret": "..." /* or "certificate_pem" + "private_key_pem" */,
    ///            "graph_api_version": "beta", "login_base": "...", "graph_base": "..."}],
    ///   "templates": ["<TOML or JSON credential template set>"],
    ///   "log": {"level": "info"},            // optional, process-wide
    ///   "mds_blob": "/etc/keysmith/mds.jwt",  // optional: FIDO MDS3 BLOB, with...
    ///   "mds_root": "/etc/keysmith/mds-root.pem", // ...the root it must chain to
    ///   "attestation_roots": ["/etc/keysmith/extra-roots.pem"], // optional
    ///   "allow_software_keys": false         // softkey: devices (tests, demos)
    /// }
    /// ```
    ///
    /// Also accepted (and the usual choice in a config file, see [`Session::open_file`]):
    /// `"pin_key_file"` instead of `"pin_key"`, `"template_files"` (paths) besides
    /// `"templates"`, and per IdP `"client_secret_env"` or `"client_secret_file"` instead
    /// of `"client_secret"`. The same fields in TOML: [`SessionConfig::from_toml`].
    ///
    /// Secrets (PIN key, client secret, private key) are zeroized after use and never
    /// appear in errors; the caller's JSON text is the caller's to wipe.
    pub fn open(config_json: &str) -> Result<Session> {
        Session::open_config(SessionConfig::from_json(config_json)?)
    }

    /// Opens a session from a configuration file, JSON or TOML with the same fields
    /// (see [`SessionConfig::from_file`]). In both, `pin_key_file` may stand for
    /// `pin_key`, `template_files` (paths) add to `templates`, and an IdP's
    /// `client_secret_env` or `client_secret_file` for its `client_secret`.
    pub fn open_file(path: &std::path::Path) -> Result<Session> {
        Session::open_config(SessionConfig::from_file(path)?)
    }

    /// Opens a session from a parsed configuration.
    pub fn open_config(mut cfg: SessionConfig) -> Result<Session> {
        let pin_key = cfg.take_pin_key()?;
        if let Some(log) = cfg.log.take() {
            crate::apply_logging(log)?;
        }
        let store = config::store(&cfg.repository)?;
        let slot: Arc<RwLock<Option<SharedCallback>>> = Arc::new(RwLock::new(None));
        let forward = slot.clone();
        let mut engine = Engine::builder(store, pin_key, cfg.station.clone()).prompt(Arc::new(
            move |p: &DevicePrompt| {
                // Clone the callback out so it may call set_prompt itself.
                let cb = forward
                    .read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone();
                if let Some(cb) = cb {
                    cb(&Prompt::from(p));
                }
            },
        ));
        let mut connections = Vec::new();
        for c in std::mem::take(&mut cfg.idp) {
            let idp = config::idp(c)?;
            connections.push(lifecycle::idp::Idp::name(&idp).to_owned());
            engine = engine.idp(Arc::new(idp));
        }
        #[cfg(feature = "fault-injection")]
        let engine = crate::fault::arm(engine)?;
        let engine = engine
            .trust_store(cfg.trust_store(now_ms() / 1000)?)
            .build()?;
        let actor = cfg
            .actor
            .take()
            .unwrap_or_else(|| format!("operator:{}", cfg.station));
        let session = Session {
            actor: Arc::from(actor.as_str()),
            inner: Arc::new(Inner {
                engine: Arc::new(engine),
                prompt: slot,
                templates: RwLock::new(BTreeMap::new()),
                connections,
                allow_software_keys: cfg.allow_software_keys,
            }),
        };
        for (what, t) in cfg.template_texts()? {
            session.add_template(&t).map_err(|e| FacadeError {
                message: format!("session config: {what}: {}", e.message),
                ..e
            })?;
        }
        Ok(session)
    }

    /// Sends prompts to `callback` (replacing any earlier one). It is called on the
    /// thread running the operation, while the operation waits for the key.
    pub fn set_prompt(&self, callback: PromptCallback) {
        *self
            .inner
            .prompt
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::from(callback));
    }

    /// The engine, shared (the split's server half drives it).
    pub(crate) fn engine(&self) -> Arc<Engine> {
        self.inner.engine.clone()
    }

    /// `allow_software_keys` from the config.
    pub(crate) fn allows_software_keys(&self) -> bool {
        self.inner.allow_software_keys
    }

    /// Stops sending prompts.
    pub fn clear_prompt(&self) {
        *self
            .inner
            .prompt
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// The actor recorded for operator calls.
    pub fn actor(&self) -> String {
        self.actor.to_string()
    }

    /// A handle on the same session whose operator calls are recorded as done by `actor`
    /// (a server records the authenticated operator of each request).
    pub fn with_actor(&self, actor: &str) -> Session {
        Session {
            inner: self.inner.clone(),
            actor: Arc::from(actor),
        }
    }

    /// The session's repository (a server keeps its own records there, e.g. agents).
    pub fn store(&self) -> Arc<dyn lifecycle::store::Store> {
        self.inner.engine.store().clone()
    }

    /// The configured IdP connection names.
    pub fn connections(&self) -> Vec<String> {
        self.inner.connections.clone()
    }

    /// Loads (or replaces) a credential template set from TOML or JSON text.
    pub fn add_template(&self, text: &str) -> Result<TemplateSummary> {
        let set = parse_template(text)?;
        let summary = TemplateSummary::from(&set);
        self.inner.engine.add_template(set.clone())?;
        self.inner
            .templates
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(summary.name.clone(), set);
        Ok(summary)
    }

    /// The names of the loaded credential templates.
    pub fn templates(&self) -> Vec<String> {
        self.inner
            .templates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    fn template(&self, name: &str) -> Result<TemplateSet> {
        self.inner
            .templates
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
            .ok_or_else(|| {
                FacadeError::usage(format!("credential template {name:?} is not loaded"))
                    .with_reason("template_not_found")
            })
    }

    fn request(&self, d: &DeviceState, p: &IssueParams) -> Result<IssueRequest> {
        let serial = p
            .serial
            .clone()
            .or_else(|| d.serial.clone())
            .ok_or_else(|| {
                FacadeError::usage("serial: the key reports no serial number: give one")
            })?;
        let serial = checked_serial(serial)?;
        Ok(IssueRequest {
            actor: p.actor.clone().unwrap_or_else(|| self.actor()),
            user: checked_user(&p.user)?,
            serial,
            transport: d.transport,
            can_reset_in_place: d.can_reset_in_place,
        })
    }

    /// Locks `device` for an operation, refusing a software key unless the session
    /// allows them (`allow_software_keys`).
    fn lock_device<'a>(&self, device: &'a Device) -> Result<crate::device::Operation<'a>> {
        let d = device.operate()?;
        refuse_software(d.transport, self.inner.allow_software_keys)?;
        Ok(d)
    }

    /// Central issuance of the key in `device` to `params.user` with template
    /// `params.template`. Returns the key afterwards (normally `issued`).
    pub fn issue(&self, device: &Device, params: &IssueParams) -> Result<Key> {
        // A template the session does not know is a usage error, named here.
        self.template(&params.template)?;
        let mut d = self.lock_device(device)?;
        let request = self.request(&d, params)?;
        Ok(self
            .inner
            .engine
            .issue(&request, &params.template, &mut d.client, now_ms())?
            .into())
    }

    /// Issuance with the holder at the desk: their PIN replaces the transport PIN and
    /// the registrations are sent in the same flow (templates that activate at issuance).
    pub fn issue_and_activate(
        &self,
        device: &Device,
        params: &IssueParams,
        holder_pin: &str,
    ) -> Result<Key> {
        // A template the session does not know is a usage error, named here.
        self.template(&params.template)?;
        let mut d = self.lock_device(device)?;
        let request = self.request(&d, params)?;
        Ok(self
            .inner
            .engine
            .issue_and_activate(
                &request,
                &params.template,
                holder_pin,
                &mut d.client,
                now_ms(),
            )?
            .into())
    }

    /// Activation by the holder: `holder_pin` replaces the transport PIN and the pending
    /// registrations are sent to the IdP.
    pub fn activate(&self, device: &Device, key_id: &str, holder_pin: &str) -> Result<Key> {
        let mut d = self.lock_device(device)?;
        Ok(self
            .inner
            .engine
            .activate(&self.actor, key_id, holder_pin, &mut d.client, now_ms())?
            .into())
    }

    /// Inactivate: the passkeys are removed at the IdP.
    pub fn inactivate(&self, key_id: &str) -> Result<Key> {
        Ok(self
            .inner
            .engine
            .inactivate(&self.actor, key_id, now_ms())?
            .into())
    }

    /// Revoke; `force` overrides the template's `force_idp_deletion_on_revoke`.
    pub fn revoke(&self, key_id: &str, force: Option<bool>) -> Result<Key> {
        Ok(self
            .inner
            .engine
            .revoke(&self.actor, key_id, force, now_ms())?
            .into())
    }

    /// Retire.
    pub fn retire(&self, key_id: &str) -> Result<Key> {
        Ok(self
            .inner
            .engine
            .retire(&self.actor, key_id, now_ms())?
            .into())
    }

    /// Unregister: the key's records are forgotten (the audit log stays).
    pub fn unregister(&self, key_id: &str) -> Result<Key> {
        Ok(self
            .inner
            .engine
            .unregister(&self.actor, key_id, now_ms())?
            .into())
    }

    /// Reissue: revoke → retire → unregister → issue, as planned for the key's state.
    pub fn reissue(&self, device: &Device, key_id: &str, params: &ReissueParams) -> Result<Key> {
        let recorded = self.inner.engine.key(key_id)?;
        let mut d = self.lock_device(device)?;
        let request = IssueRequest {
            actor: params.actor.clone().unwrap_or_else(|| self.actor()),
            user: checked_user(&params.user)?,
            // A new serial is checked; the recorded one is the key's id already.
            serial: match params.serial.clone() {
                Some(serial) => checked_serial(serial)?,
                None => recorded.serial,
            },
            transport: d.transport,
            can_reset_in_place: d.can_reset_in_place,
        };
        Ok(self
            .inner
            .engine
            .reissue(&request, key_id, &mut d.client, now_ms())?
            .into())
    }

    /// Signs in with each of the key's registered passkeys (user verified with `pin`)
    /// and verifies the assertions.
    pub fn sign_in(&self, device: &Device, key_id: &str, pin: &str) -> Result<Vec<SignInResult>> {
        let mut d = self.lock_device(device)?;
        Ok(self
            .inner
            .engine
            .sign_in(key_id, pin, &mut d.client)?
            .into_iter()
            .map(SignInResult::from)
            .collect())
    }

    /// Everything recorded about a key: record, passkeys, pending registrations, audit.
    pub fn key(&self, key_id: &str) -> Result<KeyDetails> {
        let e = &self.inner.engine;
        let key = e.key(key_id)?.into();
        let passkeys = e.passkeys(key_id)?.into_iter().map(Into::into).collect();
        let pending = e
            .store()
            .pending_for_key(key_id)
            .map_err(lifecycle::Error::from)?
            .into_iter()
            .map(Into::into)
            .collect();
        let audit = self.audit(key_id)?;
        Ok(KeyDetails {
            key,
            passkeys,
            pending,
            audit,
        })
    }

    /// Keys matching every criterion of `filter` (all keys when empty), sorted by id.
    pub fn list_keys(&self, filter: &KeyFilter) -> Result<Vec<Key>> {
        let e = &self.inner.engine;
        let state = match &filter.state {
            Some(s) => Some(
                s.parse::<CredentialState>()
                    .map_err(|err| FacadeError::usage(format!("state: {err}")))?,
            ),
            None => None,
        };
        let mut keys = if let Some(u) = &filter.user {
            let mut found = e.find_keys(&KeyQuery::ByUser(u.clone()))?;
            // Keys record the IdP's object id: a UPN is resolved at each connection.
            if found.is_empty() && u.contains('@') {
                for name in &self.inner.connections {
                    let id = e.idp(name)?.user(u).map_err(lifecycle::Error::from)?.id;
                    found.extend(e.find_keys(&KeyQuery::ByUser(id))?);
                }
            }
            found
        } else if let Some(s) = &filter.serial {
            e.find_keys(&KeyQuery::BySerial(s.clone()))?
        } else if let Some(st) = state {
            e.find_keys(&KeyQuery::ByState(st))?
        } else {
            let mut all = Vec::new();
            for st in CredentialState::ALL {
                all.extend(e.find_keys(&KeyQuery::ByState(st))?);
            }
            all
        };
        keys.retain(|k| {
            state.is_none_or(|st| k.state == st)
                && filter.serial.as_ref().is_none_or(|s| &k.serial == s)
        });
        keys.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        keys.dedup_by(|a, b| a.key_id == b.key_id);
        Ok(keys.into_iter().map(Key::from).collect())
    }

    /// The audit log of a key, oldest first.
    pub fn audit(&self, key_id: &str) -> Result<Vec<AuditEntry>> {
        Ok(self
            .inner
            .engine
            .audit_for(key_id)?
            .into_iter()
            .map(AuditEntry::from)
            .collect())
    }

    /// Checks the whole audit log: the hash chain and each record's MAC under the key
    /// derived from the session's PIN key. A record changed, removed or inserted outside
    /// keysmith is named in the result (`ok` false, `first_bad_id`).
    pub fn audit_verify(&self) -> Result<AuditCheck> {
        Ok(self.inner.engine.verify_audit()?.into())
    }

    /// Authenticates, as they are, the rows an upgraded database holds from before rows
    /// carried MACs (schema < 6); until then an engine refuses them. Once per database
    /// (a second call is a repository error), recorded in the audit log under the
    /// session's actor. Run right after the upgrade: it trusts what it finds.
    pub fn adopt_unauthenticated_rows(&self) -> Result<AdoptedRows> {
        Ok(self
            .inner
            .engine
            .adopt_unauthenticated_rows(&self.actor, now_ms())?
            .into())
    }

    /// Replays the IdP side-effect journal (entries left by failed or crashed flows).
    pub fn replay_journal(&self) -> Result<Vec<ReplayedEntry>> {
        Ok(self
            .inner
            .engine
            .replay_journal(now_ms())?
            .into_iter()
            .map(ReplayedEntry::from)
            .collect())
    }

    /// Checks the repository for damage and returns its schema version: on SQLite the
    /// full `PRAGMA integrity_check` (opening a session already ran the quicker
    /// `quick_check`) and that the file is still the one opened; on PostgreSQL (which
    /// checks its own pages) the connection and the schema version. Damage is a
    /// repository error with reason `repository_damaged`, a database file deleted or
    /// replaced under the session `repository_gone`.
    pub fn check_repository(&self) -> Result<u32> {
        let store = self.inner.engine.store();
        store.check_integrity().map_err(lifecycle::Error::from)?;
        Ok(store.schema_version().map_err(lifecycle::Error::from)?)
    }

    /// Connectivity check of an IdP connection; returns the time it took (ms).
    pub fn check_connection(&self, connection: &str) -> Result<u64> {
        Ok(self.inner.engine.check_connection(connection)?)
    }

    /// Directory users whose display name or UPN starts with `prefix` (at most `top`).
    pub fn search_users(&self, connection: &str, prefix: &str, top: u32) -> Result<Vec<User>> {
        Ok(self
            .inner
            .engine
            .search_users(connection, prefix, top)?
            .into_iter()
            .map(User::from)
            .collect())
    }

    /// Starts a self-service sign-in: a one-time nonce (recorded in the repository) for
    /// the OpenID Connect authorization request; the ID token must come back carrying it.
    pub fn self_service_begin(&self) -> Result<SelfServiceStart> {
        Ok(self.inner.engine.self_service_begin(now_ms())?.into())
    }

    /// Self-service PIN set: the holder, authenticated by their OIDC `id_token` from the
    /// sign-in started with `nonce` ([`Session::self_service_begin`]), sets `new_pin` on
    /// their issued key, which activates it.
    pub fn self_set_pin(
        &self,
        device: &Device,
        key_id: &str,
        id_token: &str,
        nonce: &str,
        new_pin: &str,
    ) -> Result<Key> {
        let mut d = self.lock_device(device)?;
        Ok(self
            .inner
            .engine
            .self_set_pin(key_id, id_token, nonce, new_pin, &mut d.client, now_ms())?
            .into())
    }

    /// Self-issuance: the holder, authenticated by `id_token` from the sign-in started
    /// with `nonce`, issues the key in `device` to themself with credential template
    /// `template` and activates it with `new_pin`. `serial` defaults to what the device
    /// reports.
    pub fn self_issue(
        &self,
        device: &Device,
        id_token: &str,
        nonce: &str,
        template: &str,
        serial: Option<&str>,
        new_pin: &str,
    ) -> Result<Key> {
        let mut d = self.lock_device(device)?;
        let serial = serial
            .map(str::to_owned)
            .or_else(|| d.serial.clone())
            .ok_or_else(|| {
                FacadeError::usage("serial: the key reports no serial number: give one")
            })?;
        let serial = checked_serial(serial)?;
        let transport = d.transport;
        Ok(self
            .inner
            .engine
            .self_issue(
                id_token,
                nonce,
                template,
                &serial,
                transport,
                new_pin,
                &mut d.client,
                now_ms(),
            )?
            .into())
    }

    /// Compares the repository with every IdP connection for `users` (IdP object ids or
    /// UPNs; empty: every user holding a key) and reports the drift; with `fix` repairs
    /// it, with `delete_unknown` (needs `fix`) also deletes passkeys nobody issued. IdP
    /// failures for a user are findings (`check_failed`), not errors.
    pub fn reconcile(
        &self,
        users: &[String],
        fix: bool,
        delete_unknown: bool,
    ) -> Result<ReconcileReport> {
        if delete_unknown && !fix {
            return Err(FacadeError::usage("delete_unknown: needs fix"));
        }
        let users = if users.is_empty() {
            self.key_holders()?
        } else {
            users.to_vec()
        };
        let options = ReconcileOptions {
            fix,
            delete_unknown,
        };
        Ok(self
            .inner
            .engine
            .reconcile(&self.actor, &users, &options, now_ms())?
            .into())
    }

    /// Every user holding a key, read page by page.
    fn key_holders(&self) -> Result<Vec<String>> {
        let mut seen = BTreeSet::new();
        let mut after: Option<String> = None;
        loop {
            let page = self
                .inner
                .engine
                .store()
                .find_keys_page(&KeyQuery::All, after.as_deref(), MAX_PAGE)
                .map_err(lifecycle::Error::from)?;
            let Some(last) = page.last() else { break };
            after = Some(last.key_id.clone());
            seen.extend(page.into_iter().filter_map(|k| k.user_id));
        }
        Ok(seen.into_iter().collect())
    }

    /// Records a bulk job of `kind` (`issue`: columns `user,serial[,template]`;
    /// `revoke`: `key_id` or `user`, optional `force`; `reconcile`: `user`) from CSV text
    /// with a header row. The whole text is validated first (errors name the line and
    /// column). The same text for the same kind returns the job already recorded while
    /// that job is unfinished (a row not run yet), so an interrupted job is resumed by
    /// creating it again and running it; once every row has run, the same text makes a
    /// new job. A finished job is run again only by its id ([`Session::bulk_job`]).
    pub fn bulk_create(&self, kind: &str, csv: &str) -> Result<BulkJob> {
        let kind = BulkKind::parse(kind).ok_or_else(|| {
            FacadeError::usage(format!(
                "kind: {kind:?}: expected issue, revoke or reconcile"
            ))
        })?;
        if csv.len() > MAX_BULK_CSV_BYTES {
            return Err(FacadeError::usage(format!(
                "csv: {} bytes is more than the {MAX_BULK_CSV_BYTES} a bulk job reads",
                csv.len()
            )));
        }
        Ok(self
            .inner
            .engine
            .bulk_create(kind, csv, &self.actor, now_ms())?
            .into())
    }

    /// The bulk job recorded as `job_id`, finished or not (to resume it by id: give its
    /// id to [`Session::bulk_run`]).
    pub fn bulk_job(&self, job_id: i64) -> Result<BulkJob> {
        self.inner
            .engine
            .store()
            .bulk_job(job_id)
            .map_err(lifecycle::Error::from)?
            .map(BulkJob::from)
            .ok_or_else(|| FacadeError::usage(format!("no bulk job {job_id} is recorded")))
    }

    /// Runs (or resumes) bulk job `job_id`: every row not done yet is run (failed rows
    /// again with `options.retry_failed`). For each issue row `device` is asked for the
    /// device spec of the key to issue (`softkey:STATEFILE`, `usb:PATH`, `nfc:READER`;
    /// the facade opens it); an `Err` fails that row with its message. `progress` is
    /// called on this thread after each row. Failed rows are reported in the summary,
    /// not as an error. [`Session::bulk_run_stoppable`] can be stopped between rows.
    pub fn bulk_run(
        &self,
        job_id: i64,
        options: &BulkRunOptions,
        device: &mut dyn FnMut(&BulkRow) -> std::result::Result<String, String>,
        progress: &mut dyn FnMut(&BulkProgress),
    ) -> Result<BulkSummary> {
        self.bulk_run_stoppable(job_id, options, device, progress, &BulkStop::new())
    }

    /// One page of every key, sorted by id: keys after `after` (none: from the first),
    /// at most `limit` (1 to [`MAX_PAGE`]).
    pub fn list_keys_page(&self, after: Option<&str>, limit: u32) -> Result<KeyPage> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(FacadeError::usage(format!(
                "limit: {limit}: expected 1 to {MAX_PAGE}"
            )));
        }
        let keys: Vec<Key> = self
            .inner
            .engine
            .store()
            .find_keys_page(&KeyQuery::All, after, limit)
            .map_err(lifecycle::Error::from)?
            .into_iter()
            .map(Key::from)
            .collect();
        let full = u32::try_from(keys.len()).map_or(true, |n| n >= limit);
        let next_after = if full {
            keys.last().map(|k| k.key_id.clone())
        } else {
            None
        };
        Ok(KeyPage { keys, next_after })
    }

    /// One page of the pending registrations whose challenge expires within `within_ms`
    /// from now (already expired ones included), soonest first: at most `limit` (1 to
    /// [`MAX_PAGE`]) after the cursor `after` (none: from the first). The window is
    /// measured at each call.
    pub fn list_expiring_page(
        &self,
        within_ms: u64,
        after: Option<&ExpiringCursor>,
        limit: u32,
    ) -> Result<ExpiringPage> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(FacadeError::usage(format!(
                "limit: {limit}: expected 1 to {MAX_PAGE}"
            )));
        }
        let before = now_ms().saturating_add(within_ms);
        let pending: Vec<ExpiringPending> = self
            .inner
            .engine
            .store()
            .pending_expiring_page(
                before,
                after.map(|c| lifecycle::store::PendingPosition {
                    challenge_expires_ms: c.challenge_expires_ms,
                    key_id: c.key_id.as_str(),
                    passkey_template: c.passkey_template.as_str(),
                }),
                limit,
            )
            .map_err(lifecycle::Error::from)?
            .into_iter()
            .map(|p| ExpiringPending {
                key_id: p.key_id,
                passkey_template: p.passkey_template,
                user_id: p.user_id,
                challenge_expires_ms: p.challenge_expires_ms,
            })
            .collect();
        let full = u32::try_from(pending.len()).map_or(true, |n| n >= limit);
        let next_after = if full {
            pending.last().map(|p| ExpiringCursor {
                challenge_expires_ms: p.challenge_expires_ms,
                key_id: p.key_id.clone(),
                passkey_template: p.passkey_template.clone(),
            })
        } else {
            None
        };
        Ok(ExpiringPage {
            pending,
            next_after,
        })
    }
}

/// Refuses a software key (`softkey:`) unless the session allows them.
fn refuse_software(transport: KeyTransport, allowed: bool) -> Result<()> {
    if transport == KeyTransport::Software && !allowed {
        return Err(FacadeError::usage(
            "device: software keys (softkey:) are for tests and demos and are refused unless the session config sets allow_software_keys: true",
        )
        .with_reason("software_key_refused"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_blank_user_or_one_with_control_characters_is_refused() {
        for bad in ["", "  ", "kim\n", "k\u{7}im"] {
            let e = super::checked_user(bad).err().unwrap();
            assert_eq!(
                (e.kind, e.reason),
                (crate::ErrorKind::Usage, "user_invalid")
            );
            assert!(e.message.starts_with("user "), "{}", e.message);
        }
        assert_eq!(
            super::checked_user("kim@contoso.com").unwrap(),
            "kim@contoso.com"
        );
    }
}
