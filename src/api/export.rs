//! Streamed exports: rows are read in chunks on the blocking pool and sent through a small
//! bounded channel, so memory stays constant whatever the range, and a client that goes away
//! stops the reading.
//!
//! An export holds a pooled connection for as long as its client reads, so exports get a
//! bounded share of the pool (`server.max_exports` at once; more get 429 with Retry-After) and a
//! client that stops reading for `server.export_send_timeout_s` loses its export: ten stalled
//! downloads can no longer starve ingest and health of connections.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use diesel::PgConnection;
use tokio::sync::mpsc;

use super::error::ApiError;
use crate::db::{DbError, DbPool};

/// Chunks in flight between the database reader and the client.
const CHANNEL_CHUNKS: usize = 2;

/// Hands chunks of output to the client; `send` returns false once the client is gone or has
/// not taken a chunk for the send timeout.
pub struct Sink {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    timeout: std::time::Duration,
    runtime: tokio::runtime::Handle,
}

impl Sink {
    /// Sends one chunk, waiting (up to the send timeout) while the client is slower than the
    /// database.
    pub fn send(&self, chunk: Vec<u8>) -> bool {
        let sent = self
            .runtime
            .block_on(self.tx.send_timeout(Ok(Bytes::from(chunk)), self.timeout));
        match sent {
            Ok(()) => true,
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => {
                tracing::warn!(
                    timeout_s = self.timeout.as_secs(),
                    "export client stopped reading; the export was abandoned"
                );
                false
            }
            Err(mpsc::error::SendTimeoutError::Closed(_)) => false,
        }
    }
}

/// The response body of an export.
pub struct ExportBody(mpsc::Receiver<Result<Bytes, std::io::Error>>);

impl futures_core::Stream for ExportBody {
    type Item = Result<Bytes, std::io::Error>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

/// The exports that may run at once, and how long a chunk may wait for its client.
pub struct ExportLimits {
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    max: usize,
    send_timeout: std::time::Duration,
}

impl ExportLimits {
    /// `max` exports at once (at least one), each chunk waiting at most `send_timeout`.
    pub fn new(max: usize, send_timeout: std::time::Duration) -> ExportLimits {
        let max = max.max(1);
        ExportLimits {
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(max)),
            max,
            send_timeout,
        }
    }
}

/// Takes an export slot (503 now if all are taken) and a connection (503 if none can be had),
/// then runs `produce` on the blocking pool, streaming what it sends. A failure half-way is
/// logged and cuts the body short, so the client sees an incomplete transfer rather than a
/// silently truncated file.
pub async fn stream<F>(
    pool: &DbPool,
    limits: &ExportLimits,
    produce: F,
) -> Result<ExportBody, ApiError>
where
    F: FnOnce(&mut PgConnection, &Sink) -> diesel::QueryResult<()> + Send + 'static,
{
    let permit = limits.permits.clone().try_acquire_owned().map_err(|_| {
        ApiError::TooManyRequests(
            format!(
                "{} exports are running, the most allowed at once (server.max_exports); \
                 retry when one has finished",
                limits.max
            ),
            5,
        )
    })?;
    // Not `db::run`: the connection is held for the whole export while `produce` streams rows
    // through the channel, and the blocking task outlives this call.
    let pool = pool.clone();
    let mut conn = tokio::task::spawn_blocking(move || pool.get())
        .await
        .map_err(DbError::from)?
        .map_err(DbError::from)?;
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let span = tracing::Span::current();
    let sink = Sink {
        tx,
        timeout: limits.send_timeout,
        runtime: tokio::runtime::Handle::current(),
    };
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        // Held until the export ends, with the connection.
        let _permit = permit;
        if let Err(e) = produce(&mut conn, &sink) {
            tracing::error!(error = %e, "export failed part-way; the body was cut short");
            let _ = sink
                .tx
                .blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    Ok(ExportBody(rx))
}
