//! Tracing setup: structured logs on stderr, text or JSON.

use tracing::{Event, Metadata};
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber; `RUST_LOG` overrides the configured level.
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colour codes only for a terminal: a journal or a log file gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let layer = match settings.format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Text => layer.boxed(),
    };
    let result = tracing_subscriber::registry()
        .with(layer.with_filter(NotClientFaults).with_filter(filter))
        .try_init();
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// Leaves out what the HTTP library logs as an error but is the client's fault: a request its
/// parser cannot read (a NUL or a newline in a header, a broken request line) is answered 400
/// and logged by actix-http as `ERROR stream error: request parse error: ...`. An error in the
/// log must mean that airlog failed, or monitoring pages someone for every scanner.
struct NotClientFaults;

impl<S> Filter<S> for NotClientFaults {
    fn enabled(&self, _meta: &Metadata<'_>, _cx: &Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &Event<'_>, _cx: &Context<'_, S>) -> bool {
        if event.metadata().target() != "actix_http::h1::dispatcher" {
            return true;
        }
        let mut message = MessageText(String::new());
        event.record(&mut message);
        !message.0.starts_with("stream error: request parse error")
    }
}

/// The `message` field of an event, as text.
struct MessageText(String);

impl tracing::field::Visit for MessageText {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
