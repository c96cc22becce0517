//! JSON `$batch`: many GET/DELETE requests in few HTTP requests, sized to what the
//! tenant's throttling buckets allow.
//!
//! Graph meters each inner request of a `$batch` on its own, so a batch of N costs N
//! units ([`crate::pace`] paces it so), and a bucket holding fewer than N tokens refuses
//! the rest with inner 429s. The requests wait in one queue that a few workers (the
//! client's concurrency) drain: each takes as many as the limiters say the next batch
//! should carry ([`crate::pace::Limiter::batch_size`]: at most [`MAX_BATCH`], never more
//! than the bucket has been seen to hold), and an inner request answered 429 (or
//! 503/504) goes back on the queue, due after its own `Retry-After`, while the workers
//! go on with the others. Each inner request has its own attempts and wait budget (the
//! client's retry policy).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Method;

use super::{GraphClient, MAX_BATCH};
use crate::http::{api_error, path_template, Core, WaitBudget};
use crate::wire::{parse_json, BatchRequest, BatchRequestItem, BatchResponse};
use crate::GraphError;

/// One inner answer of a `$batch`.
pub(super) struct BatchOutcome {
    pub body: Vec<u8>,
    pub request_id: Option<String>,
    pub already_gone: bool,
}

type Outcome = Result<BatchOutcome, GraphError>;

/// How often a worker with nothing due looks again (requests of other workers may come
/// back for a retry).
const IDLE_POLL: Duration = Duration::from_millis(5);

/// One inner request and its retry state.
struct Item {
    index: usize,
    method: Method,
    url: String,
    /// An earlier attempt may have been carried out (5xx): a DELETE's 404 then means
    /// done.
    uncertain: bool,
    /// Attempts sent so far.
    attempts: u32,
    /// Its wait budget (Retry-After and backoff waits so far).
    budget: WaitBudget,
    /// Not to be sent again before this.
    due: Instant,
}

/// The queue the workers share.
struct Queue {
    /// Waiting to be sent (first time or again), in order.
    waiting: VecDeque<Item>,
    /// Items not answered for good yet (waiting or in a batch under way).
    open: usize,
    out: Vec<Option<Outcome>>,
}

impl Queue {
    fn finish(&mut self, index: usize, r: Outcome) {
        self.open = self.open.saturating_sub(1);
        if let Some(slot) = self.out.get_mut(index) {
            *slot = Some(r);
        }
    }

    /// Up to `size` items due now, in queue order; else when the earliest is due (or a
    /// short poll when every open item is in a batch under way). `Err(None)`: all done.
    fn take(&mut self, size: usize, now: Instant) -> Result<Vec<Item>, Option<Instant>> {
        if self.open == 0 {
            return Err(None);
        }
        let mut items = Vec::new();
        let mut i = 0;
        while items.len() < size && i < self.waiting.len() {
            if self.waiting[i].due <= now {
                items.extend(self.waiting.remove(i));
            } else {
                i += 1;
            }
        }
        if items.is_empty() {
            let next = self.waiting.iter().map(|it| it.due).min();
            return Err(Some(next.unwrap_or(now + IDLE_POLL).min(now + IDLE_POLL)));
        }
        Ok(items)
    }
}

impl GraphClient {
    /// Runs GET/DELETE requests (relative URLs) through JSON `$batch`, sized to the
    /// buckets (see the module), with bounded concurrency; inner 429s (and 503/504) are
    /// retried after their own `Retry-After`. Returns each request's final status and
    /// body, in input order.
    pub(super) fn batch(&self, requests: Vec<(Method, String)>) -> Vec<Outcome> {
        let core = self.core.clone();
        let url = format!("{}/$batch", self.root());
        let n = requests.len();
        let now = Instant::now();
        let limit = core.config.retry.max_total_wait;
        let writes = requests.iter().any(|(m, _)| *m != Method::GET);
        let queue = Arc::new(Mutex::new(Queue {
            waiting: requests
                .into_iter()
                .enumerate()
                .map(|(index, (method, url))| Item {
                    index,
                    method,
                    url,
                    uncertain: false,
                    attempts: 0,
                    budget: WaitBudget::new(limit),
                    due: now,
                })
                .collect(),
            open: n,
            out: (0..n).map(|_| None).collect(),
        }));
        let workers = core.config.max_concurrency.clamp(1, n.max(1));
        let q = queue.clone();
        let ran = self.block(async move {
            let mut set = tokio::task::JoinSet::new();
            for _ in 0..workers {
                let (core, url, q) = (core.clone(), url.clone(), q.clone());
                set.spawn(async move { worker(&core, &url, &q, writes).await });
            }
            while set.join_next().await.is_some() {}
        });
        let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut q.out)
            .into_iter()
            .map(|o| match (&ran, o) {
                (_, Some(r)) => r,
                (Err(e), None) => Err(e.clone()),
                (Ok(()), None) => Err(GraphError::Transport {
                    reason: "batch task lost".into(),
                }),
            })
            .collect()
    }
}

/// How many inner requests the next batch carries: what the resource-unit bucket (and
/// the write bucket, for writes) allows, at most [`MAX_BATCH`].
fn batch_size(core: &Core, writes: bool) -> usize {
    let most = u32::try_from(MAX_BATCH).unwrap_or(20);
    let mut size = core.read_limiter.batch_size(most);
    if writes {
        size = size.min(core.write_limiter.batch_size(most));
    }
    usize::try_from(size).unwrap_or(1)
}

/// Sends batches from the queue until every item is answered for good.
async fn worker(core: &Core, url: &str, queue: &Mutex<Queue>, writes: bool) {
    loop {
        let size = batch_size(core, writes);
        let taken = queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(size, Instant::now());
        match taken {
            Ok(items) => send(core, url, queue, items).await,
            Err(None) => return,
            Err(Some(at)) => tokio::time::sleep_until(at.into()).await,
        }
    }
}

/// Sends `items` in one `$batch` and sorts the answers: done for good, or back on the
/// queue after their Retry-After.
async fn send(core: &Core, url: &str, queue: &Mutex<Queue>, items: Vec<Item>) {
    let max = core.config.retry.max_attempts;
    let mut pending: BTreeMap<String, Item> = items
        .into_iter()
        .map(|mut it| {
            it.attempts += 1;
            (it.index.to_string(), it)
        })
        .collect();
    let body = BatchRequest {
        requests: pending
            .iter()
            .map(|(id, it)| BatchRequestItem {
                id: id.clone(),
                method: it.method.as_str().to_owned(),
                url: it.url.clone(),
                body: None,
                headers: BTreeMap::new(),
                depends_on: Vec::new(),
            })
            .collect(),
    };
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    // Every inner request is metered on its own: pace them all.
    let writes = pending
        .values()
        .filter(|it| it.method != Method::GET)
        .count();
    let paced = core
        .pace(
            u32::try_from(pending.len()).unwrap_or(u32::MAX),
            u32::try_from(writes).unwrap_or(u32::MAX),
        )
        .await;
    // A batch of GET/DELETE is idempotent as a whole.
    let reply = match core.request(Method::POST, url, Some(&bytes), true).await {
        Ok(r) => r,
        Err(f) => {
            let e: GraphError = f.into();
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            for it in pending.into_values() {
                q.finish(it.index, Err(e.clone()));
            }
            return;
        }
    };
    let parsed: BatchResponse = match parse_json(&reply.body, "$batch response") {
        Ok(p) => p,
        Err(e) => {
            let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
            for it in pending.into_values() {
                q.finish(it.index, Err(e.clone().into()));
            }
            return;
        }
    };
    let (mut refused_reads, mut refused_writes) = (0u32, 0u32);
    let endpoint = path_template(url, &core.config.graph_base);
    let now = Instant::now();
    let mut done: Vec<(usize, Outcome)> = Vec::new();
    let mut again: Vec<Item> = Vec::new();
    for r in parsed.responses {
        let Some(mut it) = pending.remove(&r.id) else {
            continue;
        };
        let header = |name: &str| {
            r.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        if r.status == 429 {
            let scope =
                header("x-ms-throttle-scope").and_then(|v| crate::pace::Bucket::from_scope(&v));
            let (rr, rw) = crate::http::refused_by(scope, it.method != Method::GET);
            refused_reads += rr;
            refused_writes += rw;
        }
        let body = r
            .body
            .map(|b| b.into_string().into_bytes())
            .unwrap_or_default();
        let request_id = header("request-id").or_else(|| reply.request_id.clone());
        let retry_after = header("retry-after")
            .and_then(|v| crate::http::parse_retry_after(&v, std::time::SystemTime::now()));
        match r.status {
            200..=299 => done.push((
                it.index,
                Ok(BatchOutcome {
                    body,
                    request_id,
                    already_gone: false,
                }),
            )),
            404 if it.uncertain && it.method == Method::DELETE => done.push((
                it.index,
                Ok(BatchOutcome {
                    body: Vec::new(),
                    request_id,
                    already_gone: true,
                }),
            )),
            429 | 500..=599 if it.attempts < max => {
                let wait = retry_after
                    .unwrap_or_else(|| core.backoff(it.attempts))
                    .min(core.config.retry.max_retry_after);
                let last = api_error(r.status, None, &body);
                match it.budget.spend(&endpoint, it.attempts, wait, last) {
                    Ok(_) => {
                        it.uncertain |= r.status >= 500;
                        it.due = now + wait;
                        core.counters.retries.fetch_add(1, Ordering::Relaxed);
                        again.push(it);
                    }
                    Err(exhausted) => done.push((it.index, Err(exhausted))),
                }
            }
            status => {
                let mut e = api_error(status, None, &body);
                if let GraphError::Api {
                    request_id: rid @ None,
                    ..
                } = &mut e
                {
                    *rid = request_id;
                }
                done.push((it.index, Err(e)));
            }
        }
    }
    core.paced(&paced, refused_reads, refused_writes);
    // Not answered in the batch: again now, while attempts last.
    for (_, it) in pending {
        if it.attempts < max {
            again.push(it);
        } else {
            done.push((
                it.index,
                Err(GraphError::Transport {
                    reason: "no answer in $batch after all attempts".into(),
                }),
            ));
        }
    }
    let mut q = queue.lock().unwrap_or_else(PoisonError::into_inner);
    for (i, r) in done {
        q.finish(i, r);
    }
    // Retries go first (in order), so a request is not starved by newer ones.
    again.sort_by_key(|it| it.index);
    for it in again.into_iter().rev() {
        q.waiting.push_front(it);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(index: usize, due: Instant) -> Item {
        Item {
            index,
            method: Method::DELETE,
            url: format!("/x/{index}"),
            uncertain: false,
            attempts: 0,
            budget: WaitBudget::new(Duration::from_secs(1)),
            due,
        }
    }

    #[test]
    fn the_queue_hands_out_what_is_due_up_to_the_size() {
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let mut q = Queue {
            waiting: [item(0, later), item(1, now), item(2, now), item(3, now)].into(),
            open: 4,
            out: (0..4).map(|_| None).collect(),
        };
        let taken = q.take(2, now).expect("due items");
        assert_eq!(taken.iter().map(|i| i.index).collect::<Vec<_>>(), [1, 2]);
        let taken = q.take(5, now).expect("due items");
        assert_eq!(taken.iter().map(|i| i.index).collect::<Vec<_>>(), [3]);
        // Only the one waiting out its Retry-After: wait (a short poll at most).
        assert!(matches!(q.take(5, now), Err(Some(at)) if at <= now + IDLE_POLL));
        assert_eq!(q.take(5, later).expect("due now").len(), 1);
        for i in 0..4 {
            q.finish(i, Err(GraphError::Transport { reason: "x".into() }));
        }
        assert!(matches!(q.take(5, later), Err(None)));
    }
}
