//! mpv: plays rebuilt from mpv's events, and the files of mpv-history-daemon.

pub mod capture;
pub mod client;
pub mod history;
pub mod live;
pub mod protocol;
