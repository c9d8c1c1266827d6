//! `airlog serve`: migrate, then run the application until SIGINT or SIGTERM.

use crate::app::Application;
use crate::config::Settings;

/// Serves until a signal; the private cluster (if any) stops last, also when serving failed
/// (e.g. the port was taken).
pub(super) fn serve(settings: Settings) -> anyhow::Result<()> {
    // Bad settings and an unusable data directory fail before anything starts.
    if settings.database_url().is_none() {
        settings.prepare_data_dir()?;
    }
    super::with_database(&settings.clone(), |url| {
        let applied = crate::db::migrate(url)?;
        for name in &applied {
            tracing::info!(migration = name.as_str(), "migration applied");
        }
        super::run_until_signalled(|shutdown| async move {
            Application::build(settings, url)?
                .run_until_stopped(shutdown)
                .await
        })
    })
}
