//! One shape for everything that runs in the background: the station supervisor and its
//! Liquidsoap monitors, the playlist writers, the mpv watcher and captures, the job scheduler
//! and the log shipper.
//!
//! A worker is a name, a pace (a period, and optionally a trigger that wakes it early), a
//! single `step` that tests drive directly, and what a failed step means (retry with a capped
//! backoff, or end the worker). [`run_until_stopped`] owns the loop and the shutdown token, so
//! no worker writes its own `loop { select! }`.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use tracing::Instrument;

use crate::shutdown::Shutdown;

/// What the loop does after a step that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Wait for the period (or the trigger) before the next step.
    Wait,
    /// Step again at once: there is more to do.
    Now,
    /// The worker is done; the loop ends.
    Stop,
}

/// What a failed step means.
#[derive(Debug, Clone, Copy)]
pub enum OnError {
    /// Log it (once per run of failures) and step again after a backoff.
    Retry(Backoff),
    /// End the loop with the error: whoever started the worker decides (a capture is tried
    /// again at the next scan, a shipper whose token is refused stops).
    Stop,
}

/// Exponential backoff: `first`, then doubling up to `cap`; back to `first` after a success.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    first: Duration,
    cap: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits `first` after the first failure, then twice as long each time, never over `cap`.
    pub const fn new(first: Duration, cap: Duration) -> Backoff {
        Backoff {
            first,
            cap,
            next: first,
        }
    }

    /// The same wait after every failure.
    pub const fn constant(wait: Duration) -> Backoff {
        Backoff::new(wait, wait)
    }

    /// The wait before the next attempt (and the one after grows).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next.min(self.cap);
        self.next = (self.next * 2).min(self.cap);
        delay
    }

    /// Starts again from `first`.
    pub fn reset(&mut self) {
        self.next = self.first;
    }

    /// Sleeps the next delay; false when shutdown came first.
    pub async fn sleep(&mut self, shutdown: &mut Shutdown) -> bool {
        let delay = self.next_delay();
        tokio::select! {
            _ = shutdown.requested() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }
}

/// Something that runs in the background, one step at a time.
pub trait Worker: Send {
    /// What logs call it ("liquidsoap monitor", "job scheduler").
    fn name(&self) -> &str;

    /// The span its steps and the loop's own messages are logged in (add the station, the
    /// socket ... there).
    fn span(&self) -> tracing::Span {
        tracing::info_span!("worker", worker = self.name())
    }

    /// How long to wait after a step that asked to wait; `None`: only the trigger wakes it.
    fn period(&self) -> Option<Duration>;

    /// What a failed step means.
    fn on_error(&self) -> OnError;

    /// One unit of work.
    fn step(&mut self) -> impl Future<Output = anyhow::Result<Next>> + Send;

    /// Resolves when something other than time asks for a step (a directory changed, a
    /// signal, an event arrived). Must be cancel-safe: the loop drops it when the period or
    /// shutdown comes first.
    fn trigger(&mut self) -> impl Future<Output = ()> + Send {
        std::future::pending()
    }

    /// Runs once when the loop ends, whatever ended it (closing connections, stopping
    /// children, a last write).
    fn stopped(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// The span of a worker that serves one station (its logs carry the station's name).
pub fn station_span(worker: &str, station: &str) -> tracing::Span {
    tracing::info_span!("worker", worker, station)
}

/// Steps `worker` at its pace until shutdown, until a step says `Stop`, or until a step fails
/// and its policy is `OnError::Stop` (then that error is returned). Steps are never cancelled:
/// a worker whose step may take long watches the shutdown token itself. A step that fails
/// once shutdown was asked for is part of stopping, not a failure.
pub async fn run_until_stopped<W: Worker>(
    worker: &mut W,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let span = worker.span();
    async move {
        let name = worker.name().to_string();
        let mut backoff = match worker.on_error() {
            OnError::Retry(b) => Some(b),
            OnError::Stop => None,
        };
        let mut failing = false;
        let result = loop {
            if shutdown.is_requested() {
                break Ok(());
            }
            let wait = match worker.step().await {
                Ok(next) => {
                    if failing {
                        tracing::info!(worker = name.as_str(), "{name} recovered");
                        failing = false;
                    }
                    if let Some(b) = backoff.as_mut() {
                        b.reset();
                    }
                    match next {
                        Next::Wait => worker.period(),
                        Next::Now => continue,
                        Next::Stop => break Ok(()),
                    }
                }
                Err(_) if shutdown.is_requested() => break Ok(()),
                Err(e) => {
                    let Some(b) = backoff.as_mut() else {
                        break Err(e);
                    };
                    let delay = b.next_delay();
                    if !failing {
                        tracing::warn!(
                            worker = name.as_str(),
                            error = format!("{e:#}"),
                            retry_ms = delay.as_millis() as u64,
                            "{name} failed; retrying with backoff"
                        );
                    } else {
                        tracing::debug!(
                            worker = name.as_str(),
                            error = format!("{e:#}"),
                            retry_ms = delay.as_millis() as u64,
                            "{name} failed again"
                        );
                    }
                    failing = true;
                    Some(delay)
                }
            };
            let sleep = async {
                match wait {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.requested() => break Ok(()),
                _ = sleep => {}
                _ = worker.trigger() => {}
            }
        };
        worker.stopped().await;
        result
    }
    .instrument(span)
    .await
}

/// A worker running on its own task.
pub struct Running {
    name: String,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// Starts `worker` on a task of its own.
pub fn spawn<W: Worker + 'static>(mut worker: W, shutdown: Shutdown) -> Running {
    Running {
        name: worker.name().to_string(),
        handle: tokio::spawn(async move { run_until_stopped(&mut worker, shutdown).await }),
    }
}

impl Running {
    /// Whether its loop has ended.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Waits for its loop to end; the error it ended with, or its panic.
    pub async fn join(self) -> anyhow::Result<()> {
        let name = self.name;
        self.handle
            .await
            .with_context(|| format!("the {name} task failed"))?
            .with_context(|| format!("the {name} stopped"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap_and_starts_again_after_a_success() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(200), ms(1000));
        let waits: Vec<_> = (0..5).map(|_| b.next_delay()).collect();
        assert_eq!(waits, [ms(200), ms(400), ms(800), ms(1000), ms(1000)]);
        b.reset();
        assert_eq!(b.next_delay(), ms(200));
        let mut c = Backoff::constant(ms(5));
        assert_eq!((c.next_delay(), c.next_delay()), (ms(5), ms(5)));
    }

    /// Fails `fail` times, then counts steps; stops at `stop_at`.
    struct Counter {
        fail: u32,
        steps: u32,
        stop_at: u32,
        stopped: bool,
    }

    impl Worker for Counter {
        fn name(&self) -> &str {
            "counter"
        }
        fn period(&self) -> Option<Duration> {
            Some(Duration::from_millis(1))
        }
        fn on_error(&self) -> OnError {
            OnError::Retry(Backoff::new(
                Duration::from_millis(1),
                Duration::from_millis(4),
            ))
        }
        async fn step(&mut self) -> anyhow::Result<Next> {
            if self.fail > 0 {
                self.fail -= 1;
                anyhow::bail!("not yet");
            }
            self.steps += 1;
            Ok(if self.steps == self.stop_at {
                Next::Stop
            } else {
                Next::Wait
            })
        }
        async fn stopped(&mut self) {
            self.stopped = true;
        }
    }

    #[tokio::test]
    async fn failures_are_retried_and_a_stop_ends_the_loop_after_the_stopped_hook() {
        let (_trigger, shutdown) = crate::shutdown::channel();
        let mut w = Counter {
            fail: 3,
            steps: 0,
            stop_at: 4,
            stopped: false,
        };
        run_until_stopped(&mut w, shutdown).await.unwrap();
        assert_eq!((w.fail, w.steps, w.stopped), (0, 4, true));
    }

    #[tokio::test]
    async fn a_worker_that_stops_on_errors_returns_the_error() {
        struct Once;
        impl Worker for Once {
            fn name(&self) -> &str {
                "once"
            }
            fn period(&self) -> Option<Duration> {
                None
            }
            fn on_error(&self) -> OnError {
                OnError::Stop
            }
            async fn step(&mut self) -> anyhow::Result<Next> {
                anyhow::bail!("refused")
            }
        }
        let (_trigger, shutdown) = crate::shutdown::channel();
        let e = run_until_stopped(&mut Once, shutdown).await.unwrap_err();
        assert_eq!(e.to_string(), "refused");
    }

    #[tokio::test]
    async fn shutdown_ends_a_worker_waiting_for_its_period() {
        let (trigger, shutdown) = crate::shutdown::channel();
        let mut w = Counter {
            fail: 0,
            steps: 0,
            stop_at: 0,
            stopped: false,
        };
        let endless = Counter {
            stop_at: u32::MAX,
            ..w
        };
        let task = spawn(endless, shutdown.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
        trigger.fire();
        task.join().await.unwrap();
        // Already asked to stop: not a single step.
        run_until_stopped(&mut w, shutdown).await.unwrap();
        assert_eq!((w.steps, w.stopped), (0, true));
    }
}
