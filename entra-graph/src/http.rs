//! The async core under the blocking client: one HTTP exchange, token cache, retries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::Method;
use tokio::sync::{Mutex, Semaphore};

use crate::auth::{Credential, Secret};
use crate::config::GraphConfig;
use crate::pace::{Bucket, Limiter, Ticket};
use crate::wire::{parse_json, ODataErrorBody, TokenErrorResponse, TokenResponse, MAX_BODY_BYTES};
use crate::GraphError;

/// A successful (2xx) answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub body: Vec<u8>,
    /// Graph's `request-id` header.
    pub request_id: Option<String>,
}

struct CachedToken {
    token: Secret,
    refresh_at: Instant,
}

/// Counters the client exposes for tests and diagnostics.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub requests: AtomicU64,
    pub retries: AtomicU64,
    pub tokens: AtomicU64,
    pub reconciliations: AtomicU64,
    /// 429 answers (inner `$batch` answers counted one by one).
    pub throttled: AtomicU64,
}

pub(crate) struct Core {
    pub http: reqwest::Client,
    pub config: GraphConfig,
    pub credential: Credential,
    token: Mutex<Option<CachedToken>>,
    pub permits: Arc<Semaphore>,
    pub counters: Counters,
    /// The process-wide limiters of this tenant's resource-unit and write buckets.
    pub read_limiter: Arc<Limiter>,
    pub write_limiter: Arc<Limiter>,
}

/// The reservations of one request (or one `$batch`'s inner requests) with the limiters.
/// Dropped (answered or not), its request is no longer in flight.
pub(crate) struct Paced {
    read: Option<(Ticket, u32)>,
    write: Option<(Ticket, u32)>,
    limiters: (Arc<Limiter>, Arc<Limiter>),
}

impl Drop for Paced {
    fn drop(&mut self) {
        let (read, write) = &self.limiters;
        let cost = |slot: &Option<(Ticket, u32)>| slot.map_or(0, |(_, c)| c);
        read.released(cost(&self.read));
        write.released(cost(&self.write));
    }
}

/// How a failed attempt should be treated.
pub(crate) enum Failure {
    /// Definitely not processed, and worth trying again after the delay: 429, or a
    /// request that was not sent because the connection could not be made ("not sent,
    /// transient").
    Retry(Duration, GraphError),
    /// The server may or may not have done it (timeout, drop, 5xx).
    Unknown(Option<Duration>, GraphError),
    /// A final answer: a 4xx other than 429; a request that could not even be built
    /// ("never sent, will never succeed": [`GraphError::Unsendable`]); a token that could
    /// not be acquired (the token endpoint has its own retries and budget); a retry budget
    /// spent; a configuration problem.
    Final(GraphError),
}

impl Failure {
    /// The error it carries.
    pub fn error(&self) -> &GraphError {
        match self {
            Failure::Retry(_, e) | Failure::Unknown(_, e) | Failure::Final(e) => e,
        }
    }

    /// The same failure carrying another error.
    fn map(self, f: impl FnOnce(GraphError) -> GraphError) -> Failure {
        match self {
            Failure::Retry(d, e) => Failure::Retry(d, f(e)),
            Failure::Unknown(d, e) => Failure::Unknown(d, f(e)),
            Failure::Final(e) => Failure::Final(f(e)),
        }
    }
}

/// The longest URI the HTTP stack (the `http` crate) can represent.
const MAX_URI_BYTES: usize = u16::MAX as usize - 1;

/// The endpoint name in errors and logs for the login (token) endpoint.
pub(crate) const TOKEN_ENDPOINT: &str = "token endpoint";

/// Sorts a request that failed before an answer came: one that could not even be built
/// was never sent and never will be (final: [`GraphError::Unsendable`], no retry, no
/// wait); one whose connection could not be made was not sent but may be next time
/// (retry); anything else may have reached the server (unknown outcome).
pub(crate) fn send_failure(e: reqwest::Error, endpoint: &str) -> Failure {
    if e.is_builder() {
        // Never the URL (it holds the user name) or a header value (the token).
        let e = e.without_url();
        let reason = match std::error::Error::source(&e) {
            Some(src) => format!("{e}: {src}"),
            None => e.to_string(),
        };
        return Failure::Final(GraphError::Unsendable {
            endpoint: endpoint.to_owned(),
            reason,
        });
    }
    // Sending it again cannot make an untrusted certificate trusted.
    if let Some(err) = crate::net::untrusted(&e) {
        return Failure::Final(err);
    }
    let connect = e.is_connect();
    let err = GraphError::Transport {
        reason: if endpoint == TOKEN_ENDPOINT {
            format!("{TOKEN_ENDPOINT}: {e}")
        } else {
            e.to_string()
        },
    };
    if connect {
        Failure::Retry(Duration::ZERO, err)
    } else {
        Failure::Unknown(None, err)
    }
}

/// The waits of one call against its budget.
#[derive(Debug)]
pub(crate) struct WaitBudget {
    /// The most this call may wait in total.
    pub limit: Duration,
    /// Waited so far.
    pub waited: Duration,
}

impl WaitBudget {
    /// A fresh budget of `limit`.
    pub fn new(limit: Duration) -> Self {
        WaitBudget {
            limit,
            waited: Duration::ZERO,
        }
    }

    /// Counts a wait of `delay` if it fits; otherwise the typed error naming `endpoint`,
    /// the `attempts` made and `last`, the last attempt's error.
    pub fn spend(
        &mut self,
        endpoint: &str,
        attempts: u32,
        delay: Duration,
        last: GraphError,
    ) -> Result<GraphError, GraphError> {
        if self.waited.saturating_add(delay) > self.limit {
            return Err(self.exhausted(endpoint, attempts, delay, self.limit, last));
        }
        self.waited += delay;
        Ok(last)
    }

    /// The typed error for a wait of `delay` that `limit` does not allow.
    pub fn exhausted(
        &self,
        endpoint: &str,
        attempts: u32,
        delay: Duration,
        limit: Duration,
        last: GraphError,
    ) -> GraphError {
        tracing::warn!(
            endpoint,
            attempts,
            waited_ms = self.waited.as_millis() as u64,
            next_wait_ms = delay.as_millis() as u64,
            budget_ms = limit.as_millis() as u64,
            "retry budget spent; giving up"
        );
        GraphError::RetryBudgetExhausted {
            endpoint: endpoint.to_owned(),
            attempts,
            waited: self.waited,
            budget: limit,
            next_wait: delay,
            last: Box::new(last),
        }
    }
}

/// Which bucket refused a request: (resource units, writes) refused, from the status and
/// the `x-ms-throttle-scope` header (a write without the header: the write quota).
pub(crate) fn refused_units(status: u16, headers: &HeaderMap, write: bool) -> (u32, u32) {
    if status != 429 {
        return (0, 0);
    }
    let scope = headers
        .get("x-ms-throttle-scope")
        .and_then(|v| v.to_str().ok())
        .and_then(Bucket::from_scope);
    refused_by(scope, write)
}

/// (resource units, writes) refused by a 429 from `scope` to a request (`write`: not a
/// GET).
pub(crate) fn refused_by(scope: Option<Bucket>, write: bool) -> (u32, u32) {
    match scope {
        Some(Bucket::Read) => (1, 0),
        Some(Bucket::Write) => (0, 1),
        None if write => (0, 1),
        None => (1, 0),
    }
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(v, std::time::SystemTime::now())
}

/// Reads a `Retry-After` value (RFC 9110 10.2.3): delay-seconds, or an HTTP-date
/// (IMF-fixdate; the obsolete RFC 850 and asctime forms are accepted too), turned into
/// the delay from `now` (zero when the date is already past).
pub(crate) fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let v = value.trim();
    if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) {
        // Huge values saturate; the caller caps the wait anyway.
        return Some(Duration::from_secs(v.parse::<u64>().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Turns an error answer of the token endpoint into a typed error.
fn token_error(status: u16, body: &[u8]) -> GraphError {
    match parse_json::<TokenErrorResponse>(body, "token error") {
        Ok(e) => GraphError::Token {
            status,
            error: e.error,
            description: e.error_description,
        },
        Err(_) => GraphError::Token {
            status,
            error: String::new(),
            description: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
        },
    }
}

/// Turns an error response into a typed error.
pub(crate) fn api_error(status: u16, headers: Option<&HeaderMap>, body: &[u8]) -> GraphError {
    let header_id = headers
        .and_then(|h| h.get("request-id"))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    match parse_json::<ODataErrorBody>(body, "OData error") {
        Ok(b) => GraphError::Api {
            status,
            code: b.error.code,
            message: b.error.message,
            request_id: b.error.inner_error.and_then(|i| i.request_id).or(header_id),
        },
        Err(_) => GraphError::Api {
            status,
            code: String::new(),
            message: String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned(),
            request_id: header_id,
        },
    }
}

impl Core {
    pub fn new(config: GraphConfig, credential: Credential) -> Result<Self, GraphError> {
        config.validate()?;
        let http = config
            .network
            .client_builder(None)?
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| GraphError::Config {
                setting: "http client",
                reason: e.to_string(),
            })?;
        Ok(Core {
            http,
            read_limiter: crate::pace::limiter(&config.graph_base, &config.tenant, Bucket::Read),
            write_limiter: crate::pace::limiter(&config.graph_base, &config.tenant, Bucket::Write),
            permits: Arc::new(Semaphore::new(config.max_concurrency)),
            config,
            credential,
            token: Mutex::new(None),
            counters: Counters::default(),
        })
    }

    /// Reserves `reads` resource units and `writes` writes with the limiters and waits
    /// for the later of the two slots. A slot handed out before the pace went down is
    /// reserved again (a few times at most); a request the start window holds back asks
    /// again (for a second at most, then goes).
    pub async fn pace(&self, reads: u32, writes: u32) -> Paced {
        let limiters = (self.read_limiter.clone(), self.write_limiter.clone());
        let mut tries = 0;
        let mut held = 0;
        loop {
            let full = |limiter: &Limiter, n: u32| n > 0 && limiter.window_full(n);
            if held < 500 && (full(&self.read_limiter, reads) || full(&self.write_limiter, writes))
            {
                held += 1;
                tokio::time::sleep(crate::pace::WINDOW_POLL).await;
                continue;
            }
            let reserve = |limiter: &Limiter, n: u32| (n > 0).then(|| (limiter.reserve(n), n));
            let paced = Paced {
                read: reserve(&self.read_limiter, reads),
                write: reserve(&self.write_limiter, writes),
                limiters: limiters.clone(),
            };
            let slots = [
                (&paced.read, &self.read_limiter),
                (&paced.write, &self.write_limiter),
            ];
            let wait = slots
                .iter()
                .filter_map(|(s, _)| s.as_ref())
                .map(|(t, _)| t.wait);
            let wait = wait.max().unwrap_or_default();
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            tries += 1;
            let current = slots
                .iter()
                .all(|(s, l)| s.as_ref().is_none_or(|(t, _)| l.still_paced(t)));
            if current || tries >= 4 {
                return paced;
            }
            // Dropping `paced` gives its units back; reserve again at the new pace.
        }
    }

    /// Tells the limiters how `paced` went: `refused_reads`/`refused_writes` units were
    /// answered 429 by that bucket, the rest accepted by it.
    pub fn paced(&self, paced: &Paced, refused_reads: u32, refused_writes: u32) {
        for (slot, limiter, refused) in [
            (&paced.read, &self.read_limiter, refused_reads),
            (&paced.write, &self.write_limiter, refused_writes),
        ] {
            if let Some((ticket, cost)) = slot {
                let refused = refused.min(*cost);
                if refused > 0 {
                    limiter.throttled(ticket, refused);
                }
                if *cost > refused {
                    limiter.accepted(ticket, *cost - refused);
                }
            }
        }
        let refused = u64::from(refused_reads + refused_writes);
        self.counters
            .throttled
            .fetch_add(refused, Ordering::Relaxed);
    }

    pub fn backoff(&self, attempt: u32) -> Duration {
        let r = &self.config.retry;
        let exp = r
            .base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(r.max_delay);
        // Full jitter between half and all of the exponential delay.
        let frac = 0.5 + (OsRng.next_u32() as f64 / u32::MAX as f64) / 2.0;
        exp.mul_f64(frac)
    }

    /// A valid access token, from cache when it is not close to expiry.
    pub async fn token(&self) -> Result<Secret, GraphError> {
        let mut guard = self.token.lock().await;
        if let Some(c) = guard.as_ref() {
            if Instant::now() < c.refresh_at {
                return Ok(c.token.clone());
            }
        }
        let started = Instant::now();
        let (token, lifetime) = self.acquire_token().await?;
        self.counters.tokens.fetch_add(1, Ordering::Relaxed);
        // Never the token itself.
        tracing::debug!(
            credential = self.credential.kind_name(),
            lifetime_secs = lifetime.as_secs(),
            duration_ms = started.elapsed().as_millis() as u64,
            "access token acquired"
        );
        // Refresh a quarter of the lifetime (at most 5 minutes) before expiry.
        let margin = (lifetime / 4).min(Duration::from_secs(300));
        *guard = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        });
        Ok(token)
    }

    pub async fn invalidate_token(&self) {
        *self.token.lock().await = None;
    }

    async fn acquire_token(&self) -> Result<(Secret, Duration), GraphError> {
        if let Credential::Callback(cb) = &self.credential {
            tracing::debug!("asking the host's callback for an access token");
            let t = cb().map_err(|reason| GraphError::TokenCallback { reason })?;
            return Ok((t.token, t.expires_in));
        }
        let url = self.config.token_url();
        let form = self
            .credential
            .token_form(&url, &self.config.scope)
            .unwrap_or_default();
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let retry = &self.config.retry;
        let mut budget = WaitBudget::new(retry.token_max_total_wait);
        let mut attempt = 0;
        loop {
            attempt += 1;
            // The form holds the client secret or assertion: only say who asks where.
            tracing::debug!(
                credential = self.credential.kind_name(),
                token_endpoint = %path_template(&url, ""),
                attempt,
                "requesting an access token"
            );
            let (err, delay) = match self.http.post(&url).form(&pairs).send().await {
                Err(e) => {
                    let failure = send_failure(e, TOKEN_ENDPOINT);
                    tracing::debug!(error = %failure.error(), "token endpoint unreachable");
                    match failure {
                        Failure::Final(err) => return Err(err),
                        other => (GraphError::from(other), self.backoff(attempt)),
                    }
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let ra = retry_after(resp.headers());
                    // The body holds the access token: wipe it after use.
                    let body = zeroize::Zeroizing::new(read_body(resp).await?);
                    if (200..300).contains(&status) {
                        let t: TokenResponse = parse_json(&body, "token response")?;
                        return Ok((
                            Secret::new(t.access_token.as_str()),
                            Duration::from_secs(t.expires_in),
                        ));
                    }
                    let err = token_error(status, &body);
                    if let GraphError::Token { error, .. } = &err {
                        tracing::warn!(
                            status,
                            error = %error,
                            retry_after_ms = ra.map(|d| d.as_millis() as u64),
                            "token endpoint refused"
                        );
                    }
                    if !matches!(status, 429 | 500..=599) {
                        return Err(err);
                    }
                    match ra {
                        // Waiting that long helps nobody: fail now, not after the wait.
                        Some(d) if d > retry.max_retry_after => {
                            return Err(budget.exhausted(
                                TOKEN_ENDPOINT,
                                attempt,
                                d,
                                retry.max_retry_after,
                                err,
                            ))
                        }
                        Some(d) => (err, d),
                        None => (err, self.backoff(attempt)),
                    }
                }
            };
            if attempt >= retry.max_attempts {
                return Err(err);
            }
            budget.spend(TOKEN_ENDPOINT, attempt, delay, err)?;
            tokio::time::sleep(delay).await;
        }
    }

    /// One exchange, plus one immediate retry with a fresh token when Graph answers 401
    /// (the cached token was revoked or expired early).
    pub async fn exchange(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, Failure> {
        match self.exchange_once(method.clone(), url, body).await {
            Err(Failure::Final(e)) if e.status() == Some(401) => {
                self.counters.retries.fetch_add(1, Ordering::Relaxed);
                self.exchange_once(method, url, body).await
            }
            other => other,
        }
    }

    /// One exchange: no retry. Adds the bearer token.
    async fn exchange_once(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
    ) -> Result<Reply, Failure> {
        self.check_target(url).map_err(Failure::Final)?;
        // The token endpoint had its own retries within its own budget: not again here.
        let token = self.token().await.map_err(Failure::Final)?;
        // A `$batch` is not metered itself: its inner requests are, and `run_batch`
        // paces them.
        let write = u32::from(method != Method::GET);
        let paced = if url.ends_with("/$batch") {
            None
        } else {
            Some(self.pace(1, write).await)
        };
        let _permit = self.permits.acquire().await.map_err(|_| {
            Failure::Final(GraphError::Transport {
                reason: "client is shutting down".into(),
            })
        })?;
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let client_request_id = request_id();
        let path = path_template(url, &self.config.graph_base);
        let started = Instant::now();
        let mut req = self
            .http
            .request(method.clone(), url)
            .bearer_auth(token.expose())
            .header("client-request-id", client_request_id.as_str());
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_vec());
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                let failure = send_failure(e, &path).map(|e| match e {
                    GraphError::Unsendable { endpoint, reason } if url.len() > MAX_URI_BYTES => {
                        GraphError::Unsendable {
                            endpoint,
                            reason: format!(
                                "{reason} (the URL is {} bytes, HTTP clients allow at most \
                                 {MAX_URI_BYTES}: a user name, id or search term too long)",
                                url.len()
                            ),
                        }
                    }
                    other => other,
                });
                tracing::debug!(
                    %method,
                    %path,
                    %client_request_id,
                    duration_ms = started.elapsed().as_millis() as u64,
                    error = %failure.error(),
                    "graph request failed before an answer"
                );
                return Err(failure);
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        if let Some(p) = &paced {
            let (r, w) = refused_units(status, &headers, write == 1);
            self.paced(p, r, w);
        }
        let request_id = headers
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = match read_body(resp).await {
            Ok(b) => b,
            Err(e) => return Err(Failure::Unknown(None, e)),
        };
        tracing::debug!(
            %method,
            %path,
            status,
            request_id = request_id.as_deref().unwrap_or(""),
            %client_request_id,
            duration_ms = started.elapsed().as_millis() as u64,
            retry_after_ms = retry_after(&headers).map(|d| d.as_millis() as u64),
            "graph request"
        );
        if (200..300).contains(&status) {
            return Ok(Reply { body, request_id });
        }
        let err = api_error(status, Some(&headers), &body);
        let ra = retry_after(&headers);
        Err(match status {
            401 => {
                self.invalidate_token().await;
                Failure::Final(err)
            }
            429 => Failure::Retry(ra.unwrap_or_else(|| self.backoff(1)), err),
            500..=599 => Failure::Unknown(ra, err),
            _ => Failure::Final(err),
        })
    }

    /// An exchange with retries. `idempotent` requests are retried on unknown outcomes
    /// too; others return the unknown outcome to the caller (which reconciles).
    pub async fn request(
        &self,
        method: Method,
        url: &str,
        body: Option<&[u8]>,
        idempotent: bool,
    ) -> Result<Reply, Failure> {
        let max = self.config.retry.max_attempts;
        let endpoint = path_template(url, &self.config.graph_base);
        let mut budget = WaitBudget::new(self.config.retry.max_total_wait);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let failure = match self.exchange(method.clone(), url, body).await {
                Ok(r) => return Ok(r),
                Err(f) => f,
            };
            let delay = match &failure {
                Failure::Final(_) => return Err(failure),
                Failure::Unknown(_, _) if !idempotent => return Err(failure),
                Failure::Retry(d, _) if d.is_zero() => self.backoff(attempt),
                Failure::Retry(d, _) => *d,
                Failure::Unknown(d, _) => d.unwrap_or_else(|| self.backoff(attempt)),
            };
            if attempt >= max || delay > self.config.retry.max_retry_after {
                return Err(failure);
            }
            let mut over = None;
            let failure = failure.map(|e| match budget.spend(&endpoint, attempt, delay, e) {
                Ok(e) => e,
                Err(exhausted) => {
                    over = Some(());
                    exhausted
                }
            });
            if over.is_some() {
                return Err(failure);
            }
            self.counters.retries.fetch_add(1, Ordering::Relaxed);
            let err = failure.error();
            tracing::warn!(
                %method,
                path = %endpoint,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying graph request"
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Refuses to send the token anywhere but the configured Graph base.
    fn check_target(&self, url: &str) -> Result<(), GraphError> {
        let base = self.config.graph_base.trim_end_matches('/');
        let ok = url
            .strip_prefix(base)
            .is_some_and(|rest| rest.starts_with('/'));
        if ok {
            Ok(())
        } else {
            Err(GraphError::InvalidInput {
                field: "@odata.nextLink",
                reason: format!("{url} is outside the configured Graph base {base}"),
            })
        }
    }
}

impl From<Failure> for GraphError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Retry(_, e) | Failure::Unknown(_, e) | Failure::Final(e) => e,
        }
    }
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, GraphError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| GraphError::Transport {
        reason: format!("reading response: {e}"),
    })? {
        if out.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(GraphError::Transport {
                reason: format!("response larger than {MAX_BODY_BYTES} bytes"),
            });
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The request's path for logs: the Graph base and the query (which may carry search
/// terms) cut off, and segments that name a user or an object (UPNs, GUIDs, method ids)
/// replaced by `{id}`.
pub(crate) fn path_template(url: &str, base: &str) -> String {
    let rest = url.strip_prefix(base.trim_end_matches('/')).unwrap_or(url);
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    // A token endpoint URL given whole: drop the scheme and authority.
    let rest = match rest.split_once("://") {
        Some((_, after)) => after.find('/').map_or("", |i| &after[i..]),
        None => rest,
    };
    let mut out = String::with_capacity(rest.len());
    for (i, seg) in rest.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        let guid = seg.len() == 36
            && seg.bytes().enumerate().all(|(j, b)| match j {
                8 | 13 | 18 | 23 => b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        let identifying = guid || seg.contains('@') || seg.contains('%') || seg.len() > 32;
        out.push_str(if identifying { "{id}" } else { seg });
    }
    out
}

/// A random GUID-shaped request id.
pub(crate) fn request_id() -> String {
    let mut b = [0u8; 16];
    OsRng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    crate::policy::format_aaguid(&b)
}

#[cfg(test)]
mod tests {
    #[test]
    fn path_templates_hide_ids_and_queries() {
        use super::path_template;
        let base = "https://graph.microsoft.com/";
        assert_eq!(
            path_template(
                "https://graph.microsoft.com/beta/users/kim%40contoso.com/authentication/fido2Methods/ZmFrZS1tZXRob2QtaWQtdGhhdC1pcy1sb25n",
                base
            ),
            "/beta/users/{id}/authentication/fido2Methods/{id}"
        );
        assert_eq!(
            path_template(
                "https://graph.microsoft.com/v1.0/users/6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11?$select=id&$filter=startswith(displayName,'k')",
                base
            ),
            "/v1.0/users/{id}"
        );
        assert_eq!(
            path_template(
                "http://127.0.0.1:1/6e8a5a4e-5a0d-4e4c-9c8e-2f7c3d8a1b11/oauth2/v2.0/token",
                ""
            ),
            "/{id}/oauth2/v2.0/token"
        );
    }

    use super::*;
    use crate::config::RetryPolicy;

    fn core() -> Core {
        let mut cfg = GraphConfig::new("t");
        cfg.retry = RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(1000),
            max_retry_after: Duration::from_secs(10),
            ..RetryPolicy::default()
        };
        Core::new(
            cfg,
            Credential::ClientSecret {
                client_id: "c".into(),
                secret: "s".into(),
            },
        )
        .unwrap()
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let c = core();
        for attempt in 0..8u32 {
            let exp = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_millis(1000));
            for _ in 0..20 {
                let d = c.backoff(attempt);
                assert!(
                    d >= exp / 2 && d <= exp,
                    "attempt {attempt}: {d:?} vs {exp:?}"
                );
            }
        }
        let distinct: std::collections::HashSet<_> = (0..20).map(|_| c.backoff(3)).collect();
        assert!(distinct.len() > 1, "jittered");
    }

    #[test]
    fn token_only_goes_to_the_graph_base() {
        let c = core();
        assert!(c
            .check_target("https://graph.microsoft.com/v1.0/users")
            .is_ok());
        assert!(c
            .check_target("https://graph.microsoft.com.evil.example/v1.0/users")
            .is_err());
        assert!(c.check_target("https://evil.example/v1.0/users").is_err());
    }

    #[test]
    fn retry_after_http_date_forms() {
        use std::time::UNIX_EPOCH;
        // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110's example) = 784111777.
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777 - 30);
        for v in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(
                parse_retry_after(v, now),
                Some(Duration::from_secs(30)),
                "{v}"
            );
        }
        // A date already past means retry now.
        let later = UNIX_EPOCH + Duration::from_secs(784_111_777 + 5);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for bad in ["", "-1", "1.5", "Sun, 32 Nov 1994 08:49:37 GMT", "soon"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad}");
        }
        let mut h = HeaderMap::new();
        let soon = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
        h.insert(RETRY_AFTER, soon.parse().unwrap());
        let d = retry_after(&h).unwrap();
        assert!(
            d > Duration::from_secs(55) && d <= Duration::from_secs(60),
            "{d:?}"
        );
    }

    #[test]
    fn retry_after_seconds_and_error_bodies() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
        let e = api_error(403, None, br#"{"error":{"code":"Authorization_RequestDenied","message":"no","innerError":{"request-id":"r1"}}}"#);
        assert_eq!(
            e,
            GraphError::Api {
                status: 403,
                code: "Authorization_RequestDenied".into(),
                message: "no".into(),
                request_id: Some("r1".into())
            }
        );
        let e = api_error(502, None, b"<html>bad gateway</html>");
        assert!(
            matches!(e, GraphError::Api { status: 502, ref message, .. } if message.contains("bad gateway"))
        );
    }
}
