//! Streamed exports: rows are read in chunks on the blocking pool and sent through a small
//! bounded channel, so memory stays constant whatever the range, and a client that goes away
//! stops the reading.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use diesel::PgConnection;
use tokio::sync::mpsc;

use crate::db::{DbError, DbPool};
use crate::error::ApiError;

/// Chunks in flight between the database reader and the client.
const CHANNEL_CHUNKS: usize = 2;

/// Hands chunks of output to the client; `send` returns false once the client is gone.
pub struct Sink(mpsc::Sender<Result<Bytes, std::io::Error>>);

impl Sink {
    /// Sends one chunk, waiting while the client is slower than the database.
    pub fn send(&self, chunk: Vec<u8>) -> bool {
        self.0.blocking_send(Ok(Bytes::from(chunk))).is_ok()
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

/// Takes a connection (503 now if none can be had), then runs `produce` on the blocking pool,
/// streaming what it sends. A failure half-way is logged and cuts the body short, so the
/// client sees an incomplete transfer rather than a silently truncated file.
pub async fn stream<F>(pool: &DbPool, produce: F) -> Result<ExportBody, ApiError>
where
    F: FnOnce(&mut PgConnection, &Sink) -> diesel::QueryResult<()> + Send + 'static,
{
    let pool = pool.clone();
    let mut conn = tokio::task::spawn_blocking(move || pool.get())
        .await
        .map_err(DbError::from)?
        .map_err(DbError::from)?;
    let (tx, rx) = mpsc::channel(CHANNEL_CHUNKS);
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || {
        let _entered = span.enter();
        let sink = Sink(tx);
        if let Err(e) = produce(&mut conn, &sink) {
            tracing::error!(error = %e, "export failed part-way; the body was cut short");
            let _ = sink
                .0
                .blocking_send(Err(std::io::Error::other("export failed")));
        }
    });
    Ok(ExportBody(rx))
}
