//! An mpv IPC client: a tokio Unix socket, a reader task that routes replies to their
//! requests by `request_id` and sends everything else to an event channel, and a deadline on
//! every request. A dead mpv ends the event channel; nothing here panics on what mpv sends.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::sync::{mpsc, oneshot};

use super::protocol::{command_line, parse_line, Incoming};

/// Why a request got no answer.
#[derive(Debug, thiserror::Error)]
pub enum MpvError {
    #[error("cannot connect to mpv at {0}: {1}")]
    Connect(String, std::io::Error),
    #[error("mpv did not answer {0} within {1:?}")]
    Timeout(String, Duration),
    #[error("the connection to mpv is closed")]
    Closed,
    #[error("mpv answered {command}: {error}")]
    Refused { command: String, error: String },
    #[error("I/O error talking to mpv: {0}")]
    Io(#[from] std::io::Error),
}

/// An event and when it arrived.
pub type Timed = (chrono::DateTime<chrono::Utc>, Incoming);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<(String, Option<Value>)>>>>;

/// A connection to one mpv instance.
pub struct MpvClient {
    writer: tokio::sync::Mutex<tokio::net::unix::OwnedWriteHalf>,
    pending: Pending,
    next_id: AtomicU64,
    timeout: Duration,
}

impl MpvClient {
    /// Connects; returns the client and the channel of events and property changes, which
    /// ends with `Incoming::Closed` when mpv goes away.
    pub async fn connect(
        path: &Path,
        timeout: Duration,
    ) -> Result<(MpvClient, mpsc::UnboundedReceiver<Timed>), MpvError> {
        let stream = tokio::time::timeout(timeout, UnixStream::connect(path))
            .await
            .map_err(|_| MpvError::Timeout("connect".into(), timeout))?
            .map_err(|e| MpvError::Connect(path.display().to_string(), e))?;
        let (read, write) = stream.into_split();
        let pending: Pending = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let routes = pending.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(read);
            let mut line = Vec::new();
            loop {
                line.clear();
                match reader.read_until(b'\n', &mut line).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                match parse_line(&line) {
                    Ok(Incoming::Reply {
                        request_id,
                        error,
                        data,
                    }) => {
                        let waiter = routes
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&request_id);
                        if let Some(w) = waiter {
                            let _ = w.send((error, data));
                        }
                    }
                    Ok(other) => {
                        if tx.send((chrono::Utc::now(), other)).is_err() {
                            break;
                        }
                    }
                    Err(why) => tracing::debug!(reason = why.as_str(), "mpv line skipped"),
                }
            }
            let _ = tx.send((chrono::Utc::now(), Incoming::Closed));
            // Waiters learn the connection is gone when their senders drop.
            routes.lock().unwrap_or_else(|e| e.into_inner()).clear();
        });
        Ok((
            MpvClient {
                writer: tokio::sync::Mutex::new(write),
                pending,
                next_id: AtomicU64::new(1),
                timeout,
            },
            rx,
        ))
    }

    /// Sends a command and waits for its reply's data.
    pub async fn request(&self, command: &[Value]) -> Result<Option<Value>, MpvError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, tx);
        let name = command
            .first()
            .and_then(Value::as_str)
            .unwrap_or("command")
            .to_string();
        let sent = async {
            let mut w = self.writer.lock().await;
            w.write_all(command_line(id, command).as_bytes()).await?;
            w.flush().await
        };
        if let Err(e) = tokio::time::timeout(self.timeout, sent)
            .await
            .map_err(|_| MpvError::Timeout(name.clone(), self.timeout))?
        {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
            return Err(e.into());
        }
        let answer = tokio::time::timeout(self.timeout, rx).await;
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        let (error, data) = answer
            .map_err(|_| MpvError::Timeout(name.clone(), self.timeout))?
            .map_err(|_| MpvError::Closed)?;
        if error == "success" {
            Ok(data)
        } else {
            Err(MpvError::Refused {
                command: name,
                error,
            })
        }
    }

    /// `get_property`; None when mpv says the property is unavailable.
    pub async fn get(&self, property: &str) -> Result<Option<Value>, MpvError> {
        match self
            .request(&[Value::from("get_property"), Value::from(property)])
            .await
        {
            Err(MpvError::Refused { error, .. }) if error == "property unavailable" => Ok(None),
            other => other,
        }
    }

    /// `observe_property`: the current value comes at once, then every change, as events.
    pub async fn observe(&self, id: u64, property: &str) -> Result<(), MpvError> {
        self.request(&[
            Value::from("observe_property"),
            Value::from(id),
            Value::from(property),
        ])
        .await
        .map(|_| ())
    }
}
