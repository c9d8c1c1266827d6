//! Prometheus metrics and the request middleware that feeds them and logs every request.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder,
};

use crate::api::AppState;
use crate::db::DbPool;

/// The service's metrics, exported at `GET /metrics`.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    pool: IntGaugeVec,
    /// Events taken in by the ingest endpoints, by kind (`stream`, `player`) and outcome
    /// (`created`, `duplicate`, `rejected`).
    pub ingest_events: IntCounterVec,
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("airlog".into()), None).expect("valid prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests answered, by route pattern and status",
            ),
            &["method", "route", "status"],
        )
        .expect("valid metric");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "http_request_duration_seconds",
                "Time to answer HTTP requests",
            )
            .buckets(vec![
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            &["method", "route"],
        )
        .expect("valid metric");
        let pool = IntGaugeVec::new(
            Opts::new("db_pool_connections", "Database pool connections by state"),
            &["state"],
        )
        .expect("valid metric");
        let ingest_events = IntCounterVec::new(
            Opts::new(
                "ingest_events_total",
                "Events received by the ingest endpoints",
            ),
            &["kind", "outcome"],
        )
        .expect("valid metric");
        for m in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(pool.clone()),
            Box::new(ingest_events.clone()),
        ] {
            registry.register(m).expect("metric registered once");
        }
        Metrics {
            registry,
            requests,
            latency,
            pool,
            ingest_events,
        }
    }

    /// Counts one answered request.
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// The Prometheus text exposition, with pool gauges read now.
    pub fn render(&self, pool: &DbPool) -> String {
        let state = pool.state();
        let idle = i64::from(state.idle_connections);
        self.pool.with_label_values(&["idle"]).set(idle);
        self.pool
            .with_label_values(&["in_use"])
            .set(i64::from(state.connections) - idle);
        self.pool
            .with_label_values(&["max"])
            .set(i64::from(pool.max_size()));
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding cannot fail");
        String::from_utf8(out).expect("prometheus text is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// Logs each request once it is answered and records its metrics. Labels use the route
/// pattern (`/api/v1/items/{id}`), never the raw path, so metrics stay bounded.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    // A token in the path (media servers' ingest) never reaches the log.
    let path = super::media_servers::loggable_path(req.path()).into_owned();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    // An error a middleware returns (a refused CORS preflight) is an answer too.
    let res = next.call(req).await;
    let status = match &res {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    let elapsed = started.elapsed();
    if let Some(metrics) = metrics {
        metrics.observe_request(&method, &route, status, elapsed.as_secs_f64());
    }
    // Query strings can carry filters with personal data; the path is enough to follow a request.
    tracing::info!(
        method,
        path,
        route,
        status,
        duration_ms = elapsed.as_secs_f64() * 1000.0,
        "request answered"
    );
    res
}
