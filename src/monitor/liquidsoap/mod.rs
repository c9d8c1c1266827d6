//! Liquidsoap: the server protocol (no I/O), the client, and the monitor loop.

pub mod client;
pub mod monitor;
pub mod plan;
pub mod protocol;
