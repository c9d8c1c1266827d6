//! mpv: plays rebuilt from mpv's events, and the files of mpv-history-daemon.

pub mod history;
