//! A faithful Entra / Microsoft Graph emulator: a real HTTP server on loopback.
//!
//! [`Emulator::start`] binds (use `127.0.0.1:0` in tests), serves on its own thread and
//! returns a handle with the URLs and client credentials that work against it, state
//! inspection, fault injection and shutdown (also on drop).
//!
//! It serves the token endpoint (`/{tenant}/oauth2/v2.0/token`, client secret and
//! certificate assertion checked) and, under `/v1.0` and `/beta`: users (by id or UPN,
//! `$filter=startswith(...)`, paging), group members (paging), the FIDO2 method policy,
//! fido2Methods creationOptions / register / list / get / delete, and `$batch`, with
//! real shapes (OData context, `@odata.nextLink`, error bodies, request ids).
//!
//! The OpenID Connect side (module docs in `oidc.rs`): `/{tenant}/v2.0/.well-known/
//! openid-configuration`, the signing keys at `/{tenant}/discovery/v2.0/keys`, RS256 ID
//! tokens for directory users ([`Emulator::holder_token`], or `grant_type=password` at the
//! token endpoint with [`DEMO_PASSWORD`]) and key rotation
//! ([`Emulator::rotate_signing_key`]).
//!
//! For native clients (`authorize.rs`): `GET /{tenant}/oauth2/v2.0/authorize` signs in the
//! `login_hint` user without a page and redirects to a loopback `redirect_uri` with a
//! single-use code bound to the PKCE S256 challenge and the nonce; the token endpoint's
//! `authorization_code` grant checks the verifier and answers with the ID token.

mod apitoken;
mod authorize;
mod graph;
mod me;
mod oidc;
mod policy2026;
mod provenance;
mod seed;
mod server;
mod state;
mod token;
mod validate;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rand_core::{OsRng, RngCore};

pub use oidc::{HolderTokenOptions, DEMO_PASSWORD, ROTATION_KEYS};
pub use state::{
    fresh_policy, iso8601, legacy_policy, GroupFixture, TenantFixture, ThrottleConfig,
    DEFAULT_PASSKEY_PROFILE_ID,
};
pub use token::AppRegistration;

use crate::ids::encode_b64url;
use crate::wire::{Fido2Method, Fido2Policy};

/// What can go wrong starting the emulator.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EmulatorError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Bind {
        /// The address.
        addr: String,
        /// The OS error.
        reason: String,
    },
    /// A fixture or registered certificate could not be read.
    #[error("fixture: {0}")]
    Fixture(String),
    /// The server thread could not be started.
    #[error("runtime: {0}")]
    Runtime(String),
    /// No directory user has this id or UPN.
    #[error("no user {0:?} in the emulated directory")]
    UnknownUser(String),
    /// An ID token could not be made (bad claims JSON, signing failure).
    #[error("ID token: {0}")]
    Token(String),
}

/// Emulator settings.
#[derive(Clone, Debug)]
pub struct EmulatorConfig {
    /// Where to listen (`127.0.0.1:0` picks a free port).
    pub listen: SocketAddr,
    /// The tenant: users, groups, policy.
    pub tenant: TenantFixture,
    /// Registered applications (a random one with a secret when empty).
    pub apps: Vec<AppRegistration>,
    /// The RP id creation options carry.
    pub rp_id: String,
    /// Items per page (Graph's default for these collections is 100).
    pub page_size: usize,
    /// Access token lifetime.
    pub token_lifetime: Duration,
    /// Challenge size in bytes (opaque, several KB like Entra's encrypted token).
    pub challenge_bytes: usize,
    /// Serve HTTPS with this certificate instead of plain HTTP (the TLS tests: a
    /// certificate from a private CA); the base URL is then `https://127.0.0.1:PORT`.
    pub tls: Option<EmulatorTls>,
}

/// The emulator's HTTPS identity.
#[derive(Clone)]
pub struct EmulatorTls {
    /// The certificate chain, leaf first (PEM). Its names must cover `127.0.0.1`.
    pub chain_pem: String,
    /// The leaf's private key (PKCS#8, PKCS#1 or SEC1 PEM).
    pub key_pem: String,
}

impl std::fmt::Debug for EmulatorTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorTls").finish_non_exhaustive()
    }
}

impl EmulatorTls {
    fn acceptor(&self) -> Result<tokio_rustls::TlsAcceptor, EmulatorError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            EmulatorError::Fixture(format!("TLS {what}: {e}"))
        };
        let chain = CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad("certificate", &e))?;
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| bad("key", &e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad("config", &e))?
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .map_err(|e| bad("certificate", &e))?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl Default for EmulatorConfig {
    fn default() -> Self {
        EmulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tenant: TenantFixture::fresh(),
            apps: vec![],
            rp_id: "login.microsoft.com".into(),
            page_size: 100,
            token_lifetime: Duration::from_secs(3599),
            challenge_bytes: 2048,
            tls: None,
        }
    }
}

/// An injected fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this status (and `Retry-After` seconds if given) without doing it.
    Status {
        /// HTTP status (429, 500, 503, 504, ...).
        status: u16,
        /// `Retry-After` seconds.
        retry_after: Option<u64>,
    },
    /// Close the connection without an answer, without doing it.
    Drop,
    /// Do it, then close the connection without an answer ("committed but the response
    /// was lost").
    CommitThenDrop,
    /// Do it and answer after this delay.
    Delay(Duration),
}

/// A fault for the next `times` requests matching `method` and `path_contains`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FaultRule {
    /// HTTP method to match (`None`: any).
    pub method: Option<String>,
    /// Substring of the path to match (`None`: any).
    pub path_contains: Option<String>,
    /// The fault.
    pub fault: Fault,
    /// How many matching requests get it.
    pub times: u32,
}

impl FaultRule {
    /// A rule for the next `times` requests with `method` whose path contains `path`.
    pub fn new(method: &str, path: &str, fault: Fault, times: u32) -> Self {
        FaultRule {
            method: Some(method.to_owned()),
            path_contains: Some(path.to_owned()),
            fault,
            times,
        }
    }
}

/// One request the emulator answered (for tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Status answered (0 when the connection was dropped).
    pub status: u16,
}

/// Settings changeable while running.
#[derive(Clone, Debug, Default)]
pub(crate) struct Knobs {
    pub latency: Duration,
    pub throttle: Option<ThrottleConfig>,
    /// How long a new passkey stays out of listings.
    pub replication_lag: Duration,
    /// The separate write bucket (`None`: writes are not metered on their own).
    pub write_throttle: Option<ThrottleConfig>,
    pub faults: Vec<FaultRule>,
    /// Send `Retry-After` as an HTTP-date instead of delay-seconds.
    pub retry_after_http_date: bool,
    /// The creation options' `extensions` instead of Entra's (see
    /// [`Emulator::set_creation_extensions`]).
    pub creation_extensions: Option<serde_json::Value>,
}

pub(crate) struct Shared {
    pub config: EmulatorConfig,
    pub base_url: String,
    pub apps: Vec<(AppRegistration, Vec<token::RegisteredCert>)>,
    pub state: Mutex<state::State>,
    pub knobs: Mutex<Knobs>,
    pub oidc: Mutex<oidc::OidcState>,
    pub in_flight: std::sync::atomic::AtomicUsize,
    pub max_in_flight: std::sync::atomic::AtomicUsize,
}

impl Shared {
    pub fn state(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn knobs(&self) -> MutexGuard<'_, Knobs> {
        self.knobs.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn oidc(&self) -> MutexGuard<'_, oidc::OidcState> {
        self.oidc.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running emulator. Shuts down on drop.
pub struct Emulator {
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    addr: SocketAddr,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish()
    }
}

fn random_guid() -> String {
    crate::http::request_id()
}

impl Emulator {
    /// Binds and starts serving on a background thread.
    pub fn start(mut config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        if config.apps.is_empty() {
            let mut secret = [0u8; 30];
            OsRng.fill_bytes(&mut secret);
            config.apps.push(AppRegistration {
                client_id: random_guid(),
                client_secret: Some(format!("emu~{}", encode_b64url(&secret))),
                certificates_pem: vec![],
                roles: None,
            });
        }
        let mut apps = Vec::new();
        for app in &config.apps {
            let certs = app
                .certificates_pem
                .iter()
                .map(|p| token::load_cert(p))
                .collect::<Result<Vec<_>, _>>()
                .map_err(EmulatorError::Fixture)?;
            apps.push((app.clone(), certs));
        }
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|e| EmulatorError::Bind {
                addr: config.listen.to_string(),
                reason: e.to_string(),
            })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| EmulatorError::Runtime(e.to_string()))?;
        let addr = listener
            .local_addr()
            .map_err(|e| EmulatorError::Runtime(e.to_string()))?;
        let acceptor = config.tls.as_ref().map(EmulatorTls::acceptor).transpose()?;
        let scheme = if acceptor.is_some() { "https" } else { "http" };
        let shared = Arc::new(Shared {
            base_url: format!("{scheme}://{addr}"),
            apps,
            state: Mutex::new(state::State::new(config.tenant.clone())),
            knobs: Mutex::new(Knobs::default()),
            oidc: Mutex::new(oidc::OidcState::default()),
            in_flight: Default::default(),
            max_in_flight: Default::default(),
            config,
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| EmulatorError::Runtime(e.to_string()))?;
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("entra-emulator".into())
            .spawn(move || rt.block_on(server::serve(s, listener, acceptor, rx)))
            .map_err(|e| EmulatorError::Runtime(e.to_string()))?;
        Ok(Emulator {
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
            addr,
        })
    }

    /// `http://127.0.0.1:PORT` (`https://` with [`EmulatorConfig::tls`]): both the login
    /// base and the Graph base.
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }
    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// The tenant id.
    pub fn tenant_id(&self) -> &str {
        &self.shared.config.tenant.tenant_id
    }
    /// The token endpoint URL.
    pub fn token_url(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.base_url(), self.tenant_id())
    }
    /// The first registered app's client id.
    pub fn client_id(&self) -> &str {
        self.shared
            .config
            .apps
            .first()
            .map(|a| a.client_id.as_str())
            .unwrap_or("")
    }
    /// The first registered app's client secret, if it has one.
    pub fn client_secret(&self) -> Option<&str> {
        self.shared
            .config
            .apps
            .first()
            .and_then(|a| a.client_secret.as_deref())
    }
    /// The RP id creation options carry.
    pub fn rp_id(&self) -> &str {
        &self.shared.config.rp_id
    }

    /// A client configuration pointing at this emulator.
    pub fn graph_config(&self, version: crate::ApiVersion) -> crate::GraphConfig {
        let mut c = crate::GraphConfig::new(self.tenant_id());
        c.login_base = self.base_url().to_owned();
        c.graph_base = self.base_url().to_owned();
        c.version = version;
        c
    }

    /// The JSON line the `entra-emulator` binary prints first.
    pub fn connection_json(&self) -> String {
        serde_json::json!({
            "base_url": self.base_url(),
            "token_url": self.token_url(),
            "tenant_id": self.tenant_id(),
            "client_id": self.client_id(),
            "client_secret": self.client_secret(),
            "rp_id": self.rp_id(),
            "oidc_issuer": self.oidc_issuer(),
            "jwks_url": self.jwks_url(),
        })
        .to_string()
    }

    /// The OIDC issuer of holder ID tokens: `{base_url}/{tenant}/v2.0`.
    pub fn oidc_issuer(&self) -> String {
        oidc::issuer(self.base_url(), self.tenant_id())
    }
    /// Where the signing keys are published: `{base_url}/{tenant}/discovery/v2.0/keys`.
    pub fn jwks_url(&self) -> String {
        oidc::jwks_url(self.base_url(), self.tenant_id())
    }
    /// An RS256 ID token for a directory user (by id or UPN) to `audience` (a client
    /// id), valid for `lifetime` from the emulator's clock, with Entra's v2.0 claims for
    /// a sign-in with scope `openid profile` and MFA, without a nonce (see
    /// [`Emulator::holder_token_with`]).
    pub fn holder_token(
        &self,
        user: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, EmulatorError> {
        self.holder_token_with(&HolderTokenOptions {
            lifetime,
            ..HolderTokenOptions::new(user, audience)
        })
    }
    /// An RS256 ID token for the sign-in `opts` describes (nonce, scopes, `amr`,
    /// `auth_time`).
    pub fn holder_token_with(&self, opts: &HolderTokenOptions) -> Result<String, EmulatorError> {
        let claims = self.holder_claims(opts)?;
        let st = self.shared.oidc();
        let key = st.current().map_err(EmulatorError::Token)?;
        oidc::sign(key, &claims).map_err(EmulatorError::Token)
    }
    /// The claims [`Emulator::holder_token`] would sign, as JSON text (for tests that
    /// change a claim and sign with [`Emulator::sign_claims`]).
    pub fn holder_claims_json(
        &self,
        user: &str,
        audience: &str,
        lifetime: Duration,
    ) -> Result<String, EmulatorError> {
        self.holder_claims_json_with(&HolderTokenOptions {
            lifetime,
            ..HolderTokenOptions::new(user, audience)
        })
    }
    /// The claims [`Emulator::holder_token_with`] would sign, as JSON text.
    pub fn holder_claims_json_with(
        &self,
        opts: &HolderTokenOptions,
    ) -> Result<String, EmulatorError> {
        Ok(self.holder_claims(opts)?.to_string())
    }
    fn holder_claims(&self, opts: &HolderTokenOptions) -> Result<serde_json::Value, EmulatorError> {
        let st = self.shared.state();
        let u = st
            .find_user(&opts.user)
            .ok_or_else(|| EmulatorError::UnknownUser(opts.user.clone()))?;
        Ok(oidc::holder_claims(
            self.base_url(),
            self.tenant_id(),
            u,
            opts,
            st.now(),
        ))
    }
    /// Enables or disables a directory user's account (`accountEnabled` at Graph); a
    /// disabled user gets no new tokens, but tokens already issued stay valid until they
    /// expire, as at Entra. Returns false for an unknown user.
    pub fn set_account_enabled(&self, user: &str, enabled: bool) -> bool {
        let mut st = self.shared.state();
        let Some(id) = st.find_user(user).map(|u| u.id.clone()) else {
            return false;
        };
        st.set_account_enabled(&id, enabled)
    }
    /// Deletes a directory user (by id or UPN): Graph no longer finds it and
    /// `users/delta` reports it `@removed`. False for an unknown user.
    pub fn delete_user(&self, user: &str) -> bool {
        let mut st = self.shared.state();
        let Some(id) = st.find_user(user).map(|u| u.id.clone()) else {
            return false;
        };
        st.delete_user(&id)
    }
    /// Signs arbitrary claims (a JSON object) with the current published key (tests).
    pub fn sign_claims(&self, claims_json: &str) -> Result<String, EmulatorError> {
        let claims = parse_claims(claims_json)?;
        let st = self.shared.oidc();
        let key = st.current().map_err(EmulatorError::Token)?;
        oidc::sign(key, &claims).map_err(EmulatorError::Token)
    }
    /// Signs claims with a key that is never published in the JWKS (tests: the
    /// signature must not verify).
    pub fn sign_unpublished(&self, claims_json: &str) -> Result<String, EmulatorError> {
        let claims = parse_claims(claims_json)?;
        let key = oidc::unpublished_key().map_err(EmulatorError::Token)?;
        oidc::sign(key, &claims).map_err(EmulatorError::Token)
    }
    /// Rotates the signing key: a new key (new `kid`) signs from now on; the previous
    /// key stays published, the one before it is dropped. Returns the new `kid`.
    pub fn rotate_signing_key(&self) -> Result<String, EmulatorError> {
        let mut st = self.shared.oidc();
        st.generation += 1;
        st.current()
            .map(|k| k.kid.clone())
            .map_err(EmulatorError::Token)
    }
    /// The key ids published now (current first).
    pub fn signing_kids(&self) -> Result<Vec<String>, EmulatorError> {
        let st = self.shared.oidc();
        st.published()
            .map(|v| v.into_iter().map(|k| k.kid.clone()).collect())
            .map_err(EmulatorError::Token)
    }

    /// A user's registered passkeys (by id or UPN).
    pub fn methods(&self, user: &str) -> Vec<Fido2Method> {
        let st = self.shared.state();
        let Some(id) = st.find_user(user).map(|u| u.id.clone()) else {
            return vec![];
        };
        st.methods
            .get(&id)
            .map(|v| v.iter().map(|m| m.method.clone()).collect())
            .unwrap_or_default()
    }
    /// Passkeys registered in the whole tenant.
    pub fn method_count(&self) -> usize {
        self.shared.state().methods.values().map(Vec::len).sum()
    }
    /// Adds `n` passkeys with random credential ids to a user (for benches and paging
    /// tests); returns their method ids.
    pub fn seed_methods(&self, user: &str, n: usize) -> Vec<String> {
        let mut st = self.shared.state();
        let Some(id) = st.find_user(user).map(|u| u.id.clone()) else {
            return vec![];
        };
        let now = iso8601(st.now());
        let list = st.methods.entry(id).or_default();
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let mut cred = vec![0u8; 32];
            OsRng.fill_bytes(&mut cred);
            let mid = crate::ids::encode_with_padding_digit(&cred);
            ids.push(mid.clone());
            list.push(state::StoredMethod {
                method: Fido2Method {
                    odata_type: Some("#microsoft.graph.fido2AuthenticationMethod".into()),
                    id: mid,
                    display_name: Some(format!("Seeded key {i}")),
                    created_date_time: Some(now.clone()),
                    aa_guid: Some("cb69481e-8ff7-4039-93ec-0a2729a154a8".into()),
                    model: Some("YubiKey 5 Series".into()),
                    attestation_certificates: vec![],
                    attestation_level: Some(crate::wire::AttestationLevel::Attested),
                    passkey_type: None,
                    last_used_date_time: None,
                },
                credential_id: cred,
                stored_at: std::time::Instant::now() - std::time::Duration::from_secs(3600),
            });
        }
        ids
    }
    /// Gives a user an authentication method other than a passkey (`@odata.type`, e.g.
    /// `#microsoft.graph.windowsHelloForBusinessAuthenticationMethod`), listed by
    /// `GET /users/{id}/authentication/methods`; returns its id (`None`: no such user).
    pub fn add_authentication_method(&self, user: &str, odata_type: &str) -> Option<String> {
        let mut st = self.shared.state();
        let uid = st.find_user(user)?.id.clone();
        let id = random_guid();
        let now = iso8601(st.now());
        st.other_methods
            .entry(uid)
            .or_default()
            .push(serde_json::json!({
                "@odata.type": odata_type,
                "id": id,
                "displayName": "seeded",
                "createdDateTime": now,
            }));
        Some(id)
    }
    /// How many times the user's sign-in sessions were revoked
    /// (`POST /users/{id}/revokeSignInSessions`).
    pub fn sign_in_revocations(&self, user: &str) -> usize {
        let st = self.shared.state();
        st.find_user(user)
            .and_then(|u| st.sessions_revoked.get(&u.id))
            .map_or(0, Vec::len)
    }
    /// Records a sign-in with passkey `method_id` of `user` at `at`: its
    /// `lastUsedDateTime` (listed on beta only). False when there is no such passkey.
    pub fn record_use(&self, user: &str, method_id: &str, at: std::time::SystemTime) -> bool {
        let mut st = self.shared.state();
        let Some(uid) = st.find_user(user).map(|u| u.id.clone()) else {
            return false;
        };
        match st
            .methods
            .get_mut(&uid)
            .and_then(|v| v.iter_mut().find(|m| m.method.id == method_id))
        {
            Some(m) => {
                m.method.last_used_date_time = Some(iso8601(at));
                true
            }
            None => false,
        }
    }
    /// The FIDO2 policy in force.
    pub fn policy(&self) -> Fido2Policy {
        self.shared.state().policy.clone()
    }
    /// Gives the tenant FIDO metadata (a verified MDS BLOB, see
    /// [`fido_core::trust::TrustStore`]), as Entra has: while the policy enforces
    /// attestation, only keys whose attestation chains to an MDS root listed for their
    /// AAGUID pass registration, and only they get `attestationLevel: attested`. Without
    /// it (`None`, the default) no key is in MDS: every registration is `notAttested`
    /// and a tenant that enforces attestation refuses every key.
    pub fn set_attestation_metadata(&self, trust: Option<fido_core::trust::TrustStore>) {
        self.shared.state().trust = trust.map(std::sync::Arc::new);
    }

    /// Replaces the FIDO2 policy.
    pub fn set_policy(&self, policy: Fido2Policy) {
        self.shared.state().policy = policy;
    }

    /// Sign-ins at `/authorize` from now on say the user authenticated (password and
    /// MFA) `age` ago, as a remembered browser session does: the ID token's `auth_time`,
    /// and the MFA time Graph's `/me` checks (it wants MFA within the last 10 minutes).
    pub fn set_sign_in_age(&self, age: Duration) {
        self.shared.oidc().sign_in_age = age;
    }

    /// Replaces the FIDO2 policy as an administrator's change at Entra would: refused
    /// (and nothing changed) when it holds more than three passkey profiles or its
    /// document is larger than 20 KB, as Entra refuses it.
    pub fn update_policy(
        &self,
        policy: Fido2Policy,
    ) -> Result<(), crate::signin::PolicyLimitError> {
        policy2026::apply(&mut self.shared.state().policy, policy)
    }
    /// Moves the emulator's clock forward (expires challenges and tokens).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.state().clock_offset += by;
    }
    /// Challenges issued and kept (a challenge stays valid, and can be used again, until
    /// it expires).
    pub fn outstanding_challenges(&self) -> usize {
        self.shared.state().challenges.len()
    }
    /// Requests answered so far.
    pub fn request_log(&self) -> Vec<RequestRecord> {
        self.shared.state().log.clone()
    }
    /// The most requests the emulator was handling at once so far.
    pub fn max_in_flight(&self) -> usize {
        self.shared
            .max_in_flight
            .load(std::sync::atomic::Ordering::SeqCst)
    }
    /// Replication lag: for `lag` after a passkey is registered, listings (the
    /// passkeys and all authentication methods) do not show it yet, as directory reads
    /// are eventually consistent (review row 12). Zero (the default) turns it off.
    pub fn set_replication_lag(&self, lag: Duration) {
        self.shared.knobs().replication_lag = lag;
    }
    /// Answers creationOptions with `extensions` as its `publicKey.extensions` (`None`:
    /// Entra's own, `hmacCreateSecret`, `enforceCredentialProtectionPolicy` and
    /// `credentialProtectionPolicy: userVerificationOptional`), for tests of how a
    /// client carries other policies to the key.
    pub fn set_creation_extensions(&self, extensions: Option<serde_json::Value>) {
        self.shared.knobs().creation_extensions = extensions;
    }
    /// Adds latency to every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.knobs().latency = latency;
    }
    /// Turns the token-bucket throttle on or off (each Graph request, and each request
    /// inside a `$batch`, costs one token; empty bucket: 429 with `Retry-After`).
    pub fn set_throttle(&self, throttle: Option<ThrottleConfig>) {
        let mut st = self.shared.state();
        st.buckets.clear();
        drop(st);
        self.shared.knobs().throttle = throttle;
    }
    /// Turns the separate write bucket on or off: every request other than a GET also
    /// costs a token from it (Graph meters writes on their own, e.g.
    /// [`ThrottleConfig::documented_writes`]); empty, 429 with
    /// `x-ms-throttle-scope: Tenant_Application/Write`.
    pub fn set_write_throttle(&self, throttle: Option<ThrottleConfig>) {
        self.shared.state().write_buckets.clear();
        self.shared.knobs().write_throttle = throttle;
    }
    /// Sends every `Retry-After` (429/5xx, top level and inside `$batch`) as an HTTP-date
    /// (IMF-fixdate, RFC 9110) instead of delay-seconds; both forms are legal.
    pub fn set_retry_after_http_date(&self, on: bool) {
        self.shared.knobs().retry_after_http_date = on;
    }
    /// Injects a fault.
    pub fn inject(&self, rule: FaultRule) {
        self.shared.knobs().faults.push(rule);
    }
    /// Fault rules not yet used up.
    pub fn pending_faults(&self) -> usize {
        self.shared.knobs().faults.len()
    }

    /// Stops serving and joins the server thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        self.stop();
    }
}

fn parse_claims(claims_json: &str) -> Result<serde_json::Value, EmulatorError> {
    match serde_json::from_str(claims_json) {
        Ok(v @ serde_json::Value::Object(_)) => Ok(v),
        _ => Err(EmulatorError::Token("claims must be a JSON object".into())),
    }
}

/// Fuzz entry: registration validation against a tenant with one issued challenge, and
/// the token endpoint's form and credential checks.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn fuzz_registration(data: &[u8]) {
    let mut challenges = std::collections::HashMap::new();
    challenges.insert(
        "Y2hhbGxlbmdl".to_owned(),
        state::IssuedChallenge {
            user_id: "u".into(),
            expires: std::time::SystemTime::now() + Duration::from_secs(300),
        },
    );
    let policy = fresh_policy();
    let ctx = validate::RegistrationContext {
        user_id: "u",
        rp_id: "login.microsoft.com",
        now: std::time::SystemTime::now(),
        challenges: &challenges,
        policy: &policy,
        existing: &[],
        v1: true,
        user_groups: &[],
        trust: None,
    };
    let _ = validate::validate_registration(data, &ctx);
    let form = token::parse_form(data);
    let mut jtis = std::collections::HashSet::new();
    let _ = token::check_client_credentials(
        &form,
        &[],
        "http://127.0.0.1/t/oauth2/v2.0/token",
        std::time::SystemTime::now(),
        &mut jtis,
    );
}
