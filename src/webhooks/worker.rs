//! The delivery worker: each step looks for endpoints whose oldest pending delivery is due and
//! starts one sender per endpoint (a slow receiver holds up only its own queue); a sender that
//! finishes wakes the worker so the next delivery of that endpoint goes at once.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio::task::JoinSet;

use super::body::{self, Outgoing};
use super::guard::{self, Guard};
use crate::config::WebhookSettings;
use crate::db::webhooks::{self as queries, Attempt, DeliveryRow, EndpointRow};
use crate::db::{self, locks, DbPool};
use crate::domain::webhook::{listener_crossing, listener_level, Event, Preset};
use crate::worker::{Backoff, Next, OnError, Worker};
use diesel::Connection;

/// Bytes of an answer kept as its excerpt.
const EXCERPT_BYTES: usize = 512;

/// Sends pending deliveries, per endpoint in order.
pub struct Deliverer {
    pool: DbPool,
    settings: WebhookSettings,
    senders: JoinSet<i64>,
    /// Endpoints with a sender running, by its task.
    busy: HashMap<tokio::task::Id, i64>,
    /// When old deliveries were last pruned.
    pruned: Option<Instant>,
    /// When the listeners now were last compared with the thresholds.
    listeners_checked: Option<Instant>,
}

/// How often old deliveries are pruned, and how many at most each time.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
const PRUNE_BATCH: i64 = 10_000;

impl Deliverer {
    /// A worker on `pool` with these settings.
    pub fn new(pool: DbPool, settings: WebhookSettings) -> Deliverer {
        Deliverer {
            pool,
            settings,
            senders: JoinSet::new(),
            busy: HashMap::new(),
            pruned: None,
            listeners_checked: None,
        }
    }

    /// Compares the listeners now with `webhooks.listener_thresholds` every
    /// `listener_check_s`, and records a `listeners` event when a threshold was crossed.
    async fn check_listeners(&mut self) -> anyhow::Result<()> {
        let every = Duration::from_secs(self.settings.listener_check_s.max(1));
        if self.settings.listener_thresholds.is_empty()
            || self.listeners_checked.is_some_and(|c| c.elapsed() < every)
        {
            return Ok(());
        }
        self.listeners_checked = Some(Instant::now());
        let thresholds = self.settings.listener_thresholds.clone();
        let crossed = db::run(&self.pool, move |c| {
            c.transaction(|c| listener_step(c, &thresholds))
        })
        .await?;
        if let Some((direction, listeners)) = crossed {
            tracing::info!(direction, listeners, "listeners crossed a threshold");
        }
        Ok(())
    }

    /// Deletes finished deliveries older than `webhooks.keep_days`, once an hour.
    async fn prune(&mut self) -> anyhow::Result<()> {
        let keep = self.settings.keep_days;
        if keep == 0 || self.pruned.is_some_and(|p| p.elapsed() < PRUNE_EVERY) {
            return Ok(());
        }
        let before = Utc::now() - chrono::Duration::days(i64::from(keep));
        let rows = db::run(&self.pool, move |c| queries::prune(c, before, PRUNE_BATCH)).await?;
        if rows > 0 {
            tracing::info!(rows, keep_days = keep, "old webhook deliveries pruned");
        }
        // A full batch: more are left, prune again at the next step.
        self.pruned = (rows < PRUNE_BATCH as usize).then(Instant::now);
        Ok(())
    }

    fn reap(&mut self, done: Result<(tokio::task::Id, i64), tokio::task::JoinError>) {
        match done {
            Ok((id, _)) => {
                self.busy.remove(&id);
            }
            Err(e) => {
                tracing::error!(error = %e, "a webhook sender panicked");
                self.busy.remove(&e.id());
            }
        }
    }
}

impl Worker for Deliverer {
    fn name(&self) -> &str {
        "webhook deliverer"
    }

    fn period(&self) -> Option<Duration> {
        Some(Duration::from_millis(self.settings.poll_ms.max(10)))
    }

    fn on_error(&self) -> OnError {
        OnError::Retry(Backoff::new(
            Duration::from_millis(200),
            Duration::from_secs(10),
        ))
    }

    async fn step(&mut self) -> anyhow::Result<Next> {
        while let Some(done) = self.senders.try_join_next_with_id() {
            self.reap(done);
        }
        self.prune().await?;
        self.check_listeners().await?;
        let due = db::run(&self.pool, |c| queries::due_endpoints(c, Utc::now())).await?;
        for endpoint_id in due {
            if self.busy.values().any(|&b| b == endpoint_id) {
                continue;
            }
            let (pool, settings) = (self.pool.clone(), self.settings.clone());
            let task = self.senders.spawn(async move {
                if let Err(e) = deliver_next(&pool, &settings, endpoint_id).await {
                    tracing::warn!(
                        endpoint = endpoint_id,
                        error = format!("{e:#}"),
                        "webhook delivery step failed"
                    );
                }
                endpoint_id
            });
            self.busy.insert(task.id(), endpoint_id);
        }
        Ok(Next::Wait)
    }

    async fn trigger(&mut self) {
        match self.senders.join_next_with_id().await {
            Some(done) => self.reap(done),
            None => std::future::pending().await,
        }
    }

    async fn stopped(&mut self) {
        // A delivery cut short stays pending and is sent after the restart (at least once);
        // its lease is given back so that need not wait for it to run out.
        self.senders.shutdown().await;
        let endpoints: Vec<i64> = self.busy.drain().map(|(_, e)| e).collect();
        if !endpoints.is_empty() {
            let released =
                db::run(&self.pool, move |c| queries::release_leases(c, &endpoints)).await;
            if let Err(e) = released {
                tracing::warn!(error = %e, "webhook leases not given back; they run out");
            }
        }
    }
}

/// What [`deliver_next`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// The endpoint had nothing pending (or is gone).
    Nothing,
    /// One delivery was attempted: its id, whether it was delivered, and how many earlier
    /// deliveries were coalesced into it first.
    Attempted {
        delivery: i64,
        delivered: bool,
        coalesced: usize,
    },
}

/// Sends the oldest pending delivery of one endpoint (after coalescing, where its preset says
/// so) and records how it went. The single unit of the worker, and what tests drive.
pub async fn deliver_next(
    pool: &DbPool,
    settings: &WebhookSettings,
    endpoint_id: i64,
) -> anyhow::Result<Sent> {
    // Long enough for a name to resolve and the request to time out.
    let lease_s = settings.timeout_ms as f64 / 1000.0 + 6.0;
    let prepared = db::run(pool, move |c| -> anyhow::Result<_> {
        c.transaction(|c| prepare(c, endpoint_id, lease_s))
    })
    .await?;
    let Some((endpoint, preset, delivery, body, coalesced)) = prepared else {
        return Ok(Sent::Nothing);
    };
    let retry = Retry {
        settings,
        // A receiver that is down stays backed off when a coalesced backlog hands its attempts
        // to a newer delivery: the endpoint's run of failures counts too.
        failures: delivery.attempts.max(endpoint.consecutive_failures).max(0) as u32,
        created_at: delivery.created_at,
    };
    let attempt = match guard::parse_url(&endpoint.url) {
        Ok(url) => {
            let out = body::outgoing(preset, &url, &endpoint.secret, &body);
            send(&retry, &endpoint, &delivery, out).await
        }
        Err(e) => retry.failure(Utc::now(), 0, None, None, format!("URL {e}")),
    };
    let delivered = attempt.error.is_none();
    let host = guard::parse_url(&endpoint.url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    // The URL itself may hold a token (Discord, TuneIn): only its host is logged.
    match &attempt.error {
        None => tracing::debug!(
            endpoint = endpoint.id,
            delivery = delivery.id,
            host,
            duration_ms = attempt.latency_ms,
            "webhook delivered"
        ),
        Some(e) => tracing::warn!(
            endpoint = endpoint.id,
            delivery = delivery.id,
            host,
            attempts = delivery.attempts + 1,
            error = e.as_str(),
            given_up = attempt.retry_at.is_none(),
            "webhook delivery failed"
        ),
    }
    let failing_after = settings.failing_after.max(1) as i32;
    let (delivery_id, record) = (delivery.id, attempt);
    db::run(pool, move |c| {
        queries::record_attempt(c, delivery_id, endpoint_id, failing_after, &record)
    })
    .await?;
    Ok(Sent::Attempted {
        delivery: delivery.id,
        delivered,
        coalesced,
    })
}

/// What one delivery sends, and the endpoint it goes to.
type Prepared = (EndpointRow, Preset, DeliveryRow, body::WebhookBody, usize);

/// In one transaction, holding the endpoint's advisory lock (processes sharing the database
/// prepare an endpoint one at a time): coalesce where the preset says so, then lease the
/// oldest pending delivery and build its body. None when there is nothing to send, or another
/// process is sending.
fn prepare(
    c: &mut diesel::PgConnection,
    endpoint_id: i64,
    lease_s: f64,
) -> anyhow::Result<Option<Prepared>> {
    if !locks::try_xact_lock(c, endpoint_lock_key(endpoint_id))?
        || queries::head_leased(c, endpoint_id)?
    {
        return Ok(None);
    }
    let Some(endpoint) = queries::endpoint(c, endpoint_id)? else {
        return Ok(None);
    };
    let preset = Preset::parse(&endpoint.preset).context("unknown preset stored")?;
    let coalesced = if preset.coalesces() {
        queries::coalesce(c, endpoint_id)?
    } else {
        0
    };
    let Some(delivery) = queries::lease_head(c, endpoint_id, lease_s)? else {
        return Ok(None);
    };
    let facts = match delivery.log_id {
        Some(id) => queries::entry_facts(c, id)?,
        None => None,
    };
    let station = match delivery.station_id {
        Some(id) if facts.is_none() => queries::station_name(c, id)?,
        _ => None,
    };
    let body = body::generic(&delivery, facts.as_ref(), station);
    Ok(Some((endpoint, preset, delivery, body, coalesced)))
}

/// One look at the listeners now, under a lock (one process looks at a time): the first look
/// only records the level; a later one that finds another level records a `listeners` event.
/// The crossing's direction and the listeners, if one was crossed.
fn listener_step(
    c: &mut diesel::PgConnection,
    thresholds: &[u32],
) -> anyhow::Result<Option<(&'static str, i64)>> {
    if !locks::try_xact_lock(c, LISTENERS_LOCK_KEY)? {
        return Ok(None);
    }
    let listeners: i64 = crate::db::player_events::listeners_now(c, LISTENING_WINDOW_S)?
        .iter()
        .map(|s| s.devices)
        .sum();
    let level = listener_level(thresholds, listeners);
    let crossing = match queries::listener_level(c)? {
        Some((previous, before)) => {
            listener_crossing(thresholds, previous.max(0) as usize, listeners)
                .map(|(direction, reached)| (direction, reached, before))
        }
        None => None,
    };
    queries::set_listener_level(c, level as i32, listeners)?;
    let Some((direction, reached, before)) = crossing else {
        return Ok(None);
    };
    let payload = serde_json::json!({
        "listeners": listeners,
        "previous": before,
        "direction": direction,
        "threshold": reached,
        "thresholds": thresholds,
    });
    queries::enqueue(c, Event::Listeners.as_str(), None, &payload)?;
    Ok(Some((direction, listeners)))
}

/// Devices seen within this many seconds are listening now (as `/stats/listeners/now` counts).
const LISTENING_WINDOW_S: f64 = 120.0;
/// The advisory lock of the listener look.
const LISTENERS_LOCK_KEY: i64 = 0x6169_726c_0300_0000;

/// The advisory lock key of a webhook endpoint (beside the stations' in `monitor`).
fn endpoint_lock_key(endpoint_id: i64) -> i64 {
    0x6169_726c_0200_0000 + endpoint_id
}

/// Makes the request, on the addresses the guard checked, and judges the answer.
async fn send(
    retry: &Retry<'_>,
    endpoint: &EndpointRow,
    delivery: &DeliveryRow,
    out: Outgoing,
) -> Attempt {
    let settings = retry.settings;
    let at = Utc::now();
    let started = Instant::now();
    let guard = Guard::new(settings);
    let addrs = match guard.resolve(&out.url).await {
        Ok(a) => a,
        Err(e) => return retry.failure(at, 0, None, None, format!("refused: {e}")),
    };
    let host = out.url.host_str().unwrap_or_default().to_string();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms.max(1)))
        // A redirect could lead anywhere, past the guard: receivers must answer themselves.
        .redirect(reqwest::redirect::Policy::none())
        .resolve_to_addrs(&host, &addrs)
        .user_agent(concat!("airlog/", env!("CARGO_PKG_VERSION")))
        .build();
    let client = match client {
        Ok(c) => c,
        Err(e) => return retry.failure(at, 0, None, None, format!("client: {e}")),
    };
    let mut req = client
        .request(out.method, out.url)
        .header("X-Airlog-Event", delivery.event.as_str())
        .header("X-Airlog-Delivery", delivery.uuid.to_string())
        .header(
            "X-Airlog-Signature",
            body::signature(&endpoint.secret, &out.body),
        )
        // Mastodon (and others) drop a repeated request with the same key.
        .header("Idempotency-Key", delivery.uuid.to_string());
    if let Some(ct) = out.content_type {
        req = req.header(reqwest::header::CONTENT_TYPE, ct);
    }
    if let Some(token) = &out.bearer {
        req = req.bearer_auth(token);
    }
    let result = async {
        let mut resp = req.body(out.body).send().await?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let mut excerpt = Vec::new();
        while excerpt.len() < EXCERPT_BYTES {
            match resp.chunk().await? {
                Some(chunk) => excerpt.extend_from_slice(&chunk),
                None => break,
            }
        }
        Ok::<_, reqwest::Error>((status, retry_after, excerpt))
    }
    .await;
    let latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    match result {
        Ok((status, retry_after, bytes)) => {
            let excerpt = excerpt_of(&bytes);
            let code = Some(i32::from(status.as_u16()));
            if status.is_success() {
                Attempt {
                    at,
                    response_status: code,
                    latency_ms,
                    response_excerpt: excerpt,
                    error: None,
                    retry_at: None,
                    counts_as_failure: false,
                }
            } else if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                // The receiver paces us: wait what it asks (within the backoff's cap), and
                // do not hold it against the endpoint.
                let wait = retry_after.map(|s| Duration::from_secs(s.min(settings.max_backoff_s)));
                let mut a = retry.failure(at, latency_ms, code, excerpt, "HTTP 429".into());
                // Retry-After counts from the answer, not from when the request left.
                if let (Some(w), Some(_)) = (wait, a.retry_at) {
                    a.retry_at =
                        Some(Utc::now() + chrono::Duration::from_std(w).unwrap_or_default());
                }
                a.counts_as_failure = false;
                a
            } else {
                retry.failure(
                    at,
                    latency_ms,
                    code,
                    excerpt,
                    format!("HTTP {}", status.as_u16()),
                )
            }
        }
        Err(e) => {
            let why = if e.is_timeout() {
                format!("no answer within {} ms", settings.timeout_ms)
            } else if e.is_connect() {
                "connection failed".to_string()
            } else {
                format!("request failed: {}", e.without_url())
            };
            retry.failure(at, latency_ms, None, None, why)
        }
    }
}

/// The start of an answer as text (NULs removed: PostgreSQL text cannot hold them).
fn excerpt_of(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT_BYTES)]);
    Some(text.replace('\0', ""))
}

/// How the failed attempts of one delivery are retried.
struct Retry<'a> {
    settings: &'a WebhookSettings,
    /// Failures in a row before this attempt.
    failures: u32,
    /// When the event happened: it is given up `give_up_after_s` later.
    created_at: DateTime<Utc>,
}

impl Retry<'_> {
    /// A failed attempt: retried after the backoff with jitter, or given up once the event is
    /// older than `give_up_after_s`.
    fn failure(
        &self,
        at: DateTime<Utc>,
        latency_ms: i32,
        response_status: Option<i32>,
        response_excerpt: Option<String>,
        error: String,
    ) -> Attempt {
        let delay = retry_delay(self.settings, self.failures + 1, jitter());
        let retry_at = at + chrono::Duration::from_std(delay).unwrap_or_default();
        let give_up_at =
            self.created_at + chrono::Duration::seconds(self.settings.give_up_after_s as i64);
        Attempt {
            at,
            response_status,
            latency_ms,
            response_excerpt,
            error: Some(error),
            retry_at: (at < give_up_at).then_some(retry_at.min(give_up_at.max(at))),
            counts_as_failure: true,
        }
    }
}

/// A number in [0, 1) from the OS's randomness (0.5 if it has none).
fn jitter() -> f64 {
    getrandom::u64().map_or(0.5, |r| (r >> 11) as f64 / (1u64 << 53) as f64)
}

/// The wait after the `attempt`-th failure: `initial_backoff_ms` doubled each time, capped at
/// `max_backoff_s`, then somewhere in its upper half (`jitter` in [0, 1)) so receivers that
/// failed together are not hit together again.
pub fn retry_delay(settings: &WebhookSettings, attempt: u32, jitter: f64) -> Duration {
    let cap = settings.max_backoff_s.saturating_mul(1000).max(1);
    let full = settings
        .initial_backoff_ms
        .max(1)
        .saturating_mul(1u64 << attempt.saturating_sub(1).min(40))
        .min(cap);
    Duration::from_millis(full / 2 + (full as f64 / 2.0 * jitter.clamp(0.0, 1.0)) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_delay_doubles_with_jitter_up_to_its_cap() {
        let s = WebhookSettings {
            initial_backoff_ms: 1000,
            max_backoff_s: 10,
            ..WebhookSettings::default()
        };
        let ms = |a, j| retry_delay(&s, a, j).as_millis();
        assert_eq!((ms(1, 0.0), ms(1, 0.999_999)), (500, 999));
        assert_eq!((ms(2, 0.0), ms(3, 0.0)), (1000, 2000));
        assert_eq!(ms(60, 0.0), 5000, "capped at max_backoff_s, jittered below");
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }
}
