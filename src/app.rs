//! Builds the application (HTTP API and background workers) and runs it until shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix_web::{middleware, web, App, HttpServer};
use anyhow::Context;

use crate::api::metrics::Metrics;
use crate::api::AppState;
use crate::config::Settings;
use crate::db;
use crate::jobs::scheduler::Scheduler;
use crate::monitor::mpv::capture::{CaptureOptions, Watcher as MpvWatcher};
use crate::monitor::stations::Supervisor;
use crate::shutdown::Shutdown;
use crate::worker::{self, Running};

/// A bound, not yet running, airlog service.
pub struct Application {
    server: actix_web::dev::Server,
    port: u16,
    state: web::Data<AppState>,
}

impl Application {
    /// Binds the HTTP listener and prepares the pool; nothing runs until `run_until_stopped`.
    pub fn build(settings: Settings, database_url: &str) -> anyhow::Result<Application> {
        let settings = Arc::new(settings);
        let pool = db::pool(
            database_url,
            settings.database.pool_size,
            Duration::from_secs(settings.database.connect_timeout_s),
        );
        let state = web::Data::new(AppState {
            pool,
            settings: settings.clone(),
            metrics: Metrics::new(),
            rate_limiter: crate::api::ratelimit::RateLimiter::new(
                settings.player.rate_limit_per_minute,
            ),
            // One connection always stays out of the exports' reach.
            exports: crate::api::export::ExportLimits::new(
                settings
                    .server
                    .max_exports
                    .min(settings.database.pool_size.saturating_sub(1) as usize),
                Duration::from_secs(settings.server.export_send_timeout_s.max(1)),
            ),
            database_url: database_url.to_string(),
            ingest_writers: Arc::new(tokio::sync::Semaphore::new(
                match settings.server.ingest_writers {
                    0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                    n => n,
                },
            )),
            live: crate::console::live::Live::new(),
        });
        let listener = std::net::TcpListener::bind(&settings.server.bind)
            .with_context(|| format!("cannot listen on {}", settings.server.bind))?;
        let port = listener.local_addr()?.port();
        let app_state = state.clone();
        let app_settings = settings.clone();
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .wrap(middleware::from_fn(crate::api::boundary::check))
                .wrap(middleware::from_fn(crate::api::metrics::observe))
                .configure(crate::console::configure)
                .configure(|cfg| crate::api::configure(cfg, &app_settings))
        })
        .disable_signals()
        .shutdown_timeout(settings.server.shutdown_timeout_s);
        if settings.server.workers > 0 {
            server = server.workers(settings.server.workers);
        }
        let server = server.listen(listener)?.run();
        tracing::info!(bind = %settings.server.bind, port, "HTTP API listening");
        Ok(Application {
            server,
            port,
            state,
        })
    }

    /// The port the API listens on (useful with `bind = "127.0.0.1:0"`).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (pool, settings, metrics).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves (and runs the background workers) until `shutdown` fires, then lets requests in
    /// flight finish, waits for the workers to stop, and returns.
    pub async fn run_until_stopped(self, mut shutdown: Shutdown) -> anyhow::Result<()> {
        let handle = self.server.handle();
        let server = tokio::spawn(self.server);
        let workers = workers(&self.state, &shutdown);
        shutdown.requested().await;
        // Open console pages hold event streams that would otherwise last the whole grace time.
        self.state.live.close();
        handle.stop(true).await;
        for w in workers {
            w.join().await?;
        }
        server.await.context("the HTTP server task failed")??;
        tracing::info!("HTTP API stopped");
        Ok(())
    }
}

/// Starts the background workers of `airlog serve`: the job scheduler, the station supervisor
/// (which starts each station's monitor and playlist writer), the mpv socket watcher and the
/// webhook deliverer.
fn workers(state: &AppState, shutdown: &Shutdown) -> Vec<Running> {
    let (pool, settings, mpv) = (&state.pool, &state.settings, &state.settings.mpv);
    let scheduler = Scheduler::new(pool.clone(), Settings::clone(settings), shutdown.clone())
        .map(|w| worker::spawn(w, shutdown.clone()));
    let supervisor = Supervisor::new(pool.clone())
        .offline_after(Duration::from_secs(settings.webhooks.offline_after_s));
    let stations = worker::spawn(supervisor, shutdown.clone());
    let mpv_watcher = (!mpv.socket_dirs.is_empty() || !mpv.sockets.is_empty()).then(|| {
        let watcher = MpvWatcher::new(
            pool.clone(),
            mpv.socket_dirs
                .iter()
                .chain(&mpv.sockets)
                .cloned()
                .collect(),
            Duration::from_secs(mpv.rescan_s.max(1)),
            mpv.remove_dead,
            CaptureOptions {
                rules: mpv.rules(),
                station: (!mpv.station.is_empty()).then(|| mpv.station.clone()),
                ..Default::default()
            },
            shutdown.clone(),
        );
        worker::spawn(watcher, shutdown.clone())
    });
    let webhooks = settings.webhooks.enabled.then(|| {
        let deliverer = crate::webhooks::Deliverer::new(pool.clone(), settings.webhooks.clone());
        worker::spawn(deliverer, shutdown.clone())
    });
    [scheduler, Some(stations), mpv_watcher, webhooks]
        .into_iter()
        .flatten()
        .collect()
}
