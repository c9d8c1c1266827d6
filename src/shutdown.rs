//! One shutdown signal shared by the HTTP server and every background loop.

use tokio::sync::watch;

/// Fires once; every clone of the matching `Shutdown` then wakes.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// Something a loop can wait on to learn that it should stop.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new trigger and its first listener.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Asks everything to stop.
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }

    /// Another listener.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// True once shutdown was asked for.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves when shutdown is asked for (or the trigger is gone).
    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// Fires `trigger` on SIGINT or SIGTERM.
pub async fn on_signals(trigger: ShutdownTrigger) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    tracing::info!(signal = name, "shutting down: finishing requests in flight");
    trigger.fire();
    Ok(())
}
