//! Outgoing webhooks: the events airlog reports and the presets that shape their bodies.

named! {
    /// What happened, as receivers see it in `X-Airlog-Event` and endpoints subscribe to it.
    pub enum Event {
        /// A sound went on air (or resumed).
        OnAir = "on_air",
        /// A track of the sound on air began.
        Track = "track",
        /// A scheduled diffusion started.
        DiffusionStart = "diffusion_start",
        /// A scheduled diffusion was cancelled.
        DiffusionCancel = "diffusion_cancel",
        /// The monitor lost the station's streamer for longer than `webhooks.offline_after_s`.
        StationOffline = "station_offline",
        /// The monitor reached the streamer again after an offline event.
        StationOnline = "station_online",
        /// The listeners now crossed one of `webhooks.listener_thresholds`, up or down.
        Listeners = "listeners",
        /// A sample sent by the test action (whatever the endpoint's events).
        Ping = "ping",
    }
}

impl Event {
    /// Whether the event says what is playing now: a later one makes an earlier one moot for
    /// presets that show only the present.
    pub fn is_now_playing(self) -> bool {
        matches!(self, Event::OnAir | Event::Track)
    }
}

named! {
    /// How a delivery's request is shaped.
    pub enum Preset {
        /// JSON with a documented schema (`WebhookBody`), every event.
        Generic = "generic",
        /// A Discord channel webhook: `{"content": "..."}`.
        Discord = "discord",
        /// TuneIn AIR: a GET with `title` and `artist` added to the configured URL.
        Tunein = "tunein",
        /// A Mastodon status, posted with the secret as the access token.
        Mastodon = "mastodon",
    }
}

impl Preset {
    /// Whether a backlog of now-playing events is sent as its latest state only (the earlier
    /// ones are marked `coalesced`): these receivers show the present, and a burst of stale
    /// songs would only spam them or trip their rate limits.
    pub fn coalesces(self) -> bool {
        !matches!(self, Preset::Generic)
    }

    /// The events this preset can express.
    pub fn accepts(self, event: Event) -> bool {
        match self {
            Preset::Tunein => event.is_now_playing() || event == Event::Ping,
            _ => true,
        }
    }
}

/// How many of the thresholds `listeners` reach.
pub fn listener_level(thresholds: &[u32], listeners: i64) -> usize {
    thresholds
        .iter()
        .filter(|&&t| i64::from(t) <= listeners)
        .count()
}

/// What a move from `previous` to `listeners` crossed, if anything: the direction, and the
/// highest threshold reached now (none: below every one).
pub fn listener_crossing(
    thresholds: &[u32],
    previous_level: usize,
    listeners: i64,
) -> Option<(&'static str, Option<u32>)> {
    let level = listener_level(thresholds, listeners);
    let reached = thresholds
        .iter()
        .copied()
        .filter(|&t| i64::from(t) <= listeners)
        .max();
    match level.cmp(&previous_level) {
        std::cmp::Ordering::Greater => Some(("up", reached)),
        std::cmp::Ordering::Less => Some(("down", reached)),
        std::cmp::Ordering::Equal => None,
    }
}

named! {
    /// Where a delivery is.
    pub enum DeliveryStatus {
        /// Waiting to be sent (again).
        Pending = "pending",
        /// The receiver answered 2xx.
        Delivered = "delivered",
        /// Replaced by a later now-playing state (`coalesced_into`).
        Coalesced = "coalesced",
        /// Given up after `webhooks.give_up_after_s`; can be redelivered by hand.
        Failed = "failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_presets_that_show_the_present_coalesce_and_tunein_takes_songs_only() {
        assert!(!Preset::Generic.coalesces());
        assert!(Preset::Discord.coalesces() && Preset::Tunein.coalesces());
        assert!(Preset::Tunein.accepts(Event::Track));
        assert!(!Preset::Tunein.accepts(Event::StationOffline));
        assert!(Preset::Generic.accepts(Event::DiffusionCancel));
        assert_eq!("station_online".parse::<Event>(), Ok(Event::StationOnline));
    }

    #[test]
    fn listener_thresholds_are_crossed_up_and_down_once() {
        let t = [10, 100];
        assert_eq!(listener_level(&t, 9), 0);
        assert_eq!(listener_crossing(&t, 0, 9), None);
        assert_eq!(listener_crossing(&t, 0, 10), Some(("up", Some(10))));
        assert_eq!(listener_crossing(&t, 1, 99), None);
        assert_eq!(listener_crossing(&t, 1, 250), Some(("up", Some(100))));
        assert_eq!(listener_crossing(&t, 2, 3), Some(("down", None)));
    }
}
