//! Live pages: a server-sent events stream per open page that pushes each new entry of a
//! station's as-run log, rendered as the row the page shows.
//!
//! Entries are written by whichever airlog process holds the station's monitor lock (maybe not
//! this one) and by the API, so there is no in-process event to listen to. Each stream polls the
//! log's primary key instead, twice a second: one indexed query per open page, which meets the
//! "on the page within a second" promise without a trigger or a dedicated LISTEN connection.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use tokio::sync::mpsc;

use super::error::ConsoleError;
use super::session::Viewer;
use super::views;
use crate::api::AppState;
use crate::db::{self, console};
use crate::shutdown::{self, Shutdown, ShutdownTrigger};

/// How often a stream looks for new entries.
const POLL: Duration = Duration::from_millis(500);
/// A comment line this often keeps proxies from closing a quiet stream.
const KEEPALIVE: Duration = Duration::from_secs(15);
/// Entries sent per poll at most; a burst beyond continues at the next poll.
const BATCH: i64 = 200;

/// Ends every open stream when the server shuts down, so a page left open does not hold the
/// graceful shutdown for its whole timeout (the browser reconnects to the next server).
pub struct Live(ShutdownTrigger, Shutdown);

impl Live {
    /// Streams that run until `close`.
    pub fn new() -> Live {
        let (trigger, listener) = shutdown::channel();
        Live(trigger, listener)
    }

    /// Ends every stream.
    pub fn close(&self) {
        self.0.fire();
    }
}

impl Default for Live {
    fn default() -> Self {
        Live::new()
    }
}

/// The body of an event stream.
struct EventBody(mpsc::Receiver<Bytes>);

impl futures_core::Stream for EventBody {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|b| b.map(Ok))
    }
}

/// Where a stream starts: after the entry the browser last got (`Last-Event-ID`, sent when it
/// reconnects), else after the newest one the page was rendered with (`after`), else now.
fn start_after(req: &HttpRequest) -> Option<i64> {
    let header = req
        .headers()
        .get("Last-Event-ID")
        .and_then(|v| v.to_str().ok()?.trim().parse().ok());
    header.or_else(|| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(req.query_string())
            .ok()?
            .into_iter()
            .find(|(k, _)| k == "after")?
            .1
            .parse()
            .ok()
    })
}

/// `GET /console/stations/{name}/events`: new log entries of the station, as `entry` events
/// whose data is `{"id", "type", "html"}` (the row as the log page renders it).
pub async fn events(
    _viewer: Viewer,
    state: web::Data<AppState>,
    name: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ConsoleError> {
    let name = name.into_inner();
    let asked = start_after(&req);
    let station = name.clone();
    let default_tz = state.settings.station.time_zone.0;
    let (tz, after) = db::run(&state.pool, move |c| -> Result<_, ConsoleError> {
        let s = super::pages::station_row(c, &station)?;
        let after = match asked {
            Some(id) => id,
            None => console::last_log_id(c)?,
        };
        Ok((super::pages::station_tz(&s, default_tz), after))
    })
    .await?;
    let (tx, rx) = mpsc::channel::<Bytes>(8);
    let pool = state.pool.clone();
    let mut closing = state.live.1.clone();
    tokio::spawn(async move {
        let mut after = after;
        let mut quiet = std::time::Instant::now();
        // Tells the browser to retry after a second when the stream ends (shutdown, network).
        if tx
            .send(Bytes::from_static(b"retry: 1000\n\n"))
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                _ = closing.requested() => break,
                _ = tx.closed() => break,
                _ = tokio::time::sleep(POLL) => {}
            }
            let station = name.clone();
            let rows = match db::run(&pool, move |c| {
                console::log_after(c, &station, after, BATCH)
            })
            .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::warn!(error = %e, station = name.as_str(), "live log poll failed; retrying");
                    continue;
                }
            };
            for row in &rows {
                after = after.max(row.id);
                let data = serde_json::json!({
                    "id": row.id,
                    "type": row.r#type.as_str(),
                    "html": views::log_row(row, tz, None).into_string(),
                });
                let event = format!("id: {}\nevent: entry\ndata: {data}\n\n", row.id);
                if tx.send(Bytes::from(event)).await.is_err() {
                    return;
                }
                quiet = std::time::Instant::now();
            }
            if quiet.elapsed() >= KEEPALIVE {
                if tx
                    .send(Bytes::from_static(b": keepalive\n\n"))
                    .await
                    .is_err()
                {
                    return;
                }
                quiet = std::time::Instant::now();
            }
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        // nginx would otherwise hold events back to fill its buffer.
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(EventBody(rx)))
}
