//! Playout: stations, scheduled diffusions and the as-run log, by the names they are stored under.

named! {
    /// What plays a station's output, and so how it is monitored.
    pub enum Streamer {
        /// Liquidsoap, watched over its telnet interface.
        Liquidsoap = "liquidsoap",
        /// Nothing airlog talks to (entries come from mpv or the API).
        None = "none",
    }
}

named! {
    /// What a scheduled diffusion is.
    pub enum DiffusionType {
        /// Planned to go on air: the monitor starts (or cancels) it.
        OnAir = "on_air",
        /// Planned but not confirmed: never started by the monitor.
        Unconfirmed = "unconfirmed",
        /// Cancelled, by an operator or by the monitor.
        Cancel = "cancel",
    }
}

named! {
    /// What an entry of the as-run log records.
    pub enum LogType {
        /// A sound (or a track of one) observed on air.
        OnAir = "on_air",
        /// A scheduled diffusion started.
        Start = "start",
        /// A scheduled diffusion cancelled.
        Cancel = "cancel",
        /// The output stopped.
        Stop = "stop",
        /// Anything else worth recording.
        Other = "other",
    }
}

/// Most entries are sounds observed on air.
impl Default for LogType {
    fn default() -> LogType {
        LogType::OnAir
    }
}
