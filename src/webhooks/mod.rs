//! Outgoing webhooks: every event is recorded as a delivery in the same transaction as what
//! caused it (the outbox, see `sql/onair_log_insert.sql`); the [`worker::Deliverer`] sends
//! them, in order per endpoint, at least once, with backoff; [`guard`] keeps URLs off private
//! networks; [`body`] shapes each preset's request and signs it.

pub mod body;
pub mod guard;
pub mod worker;

pub use worker::Deliverer;
