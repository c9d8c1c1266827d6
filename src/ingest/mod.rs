//! The edges where events come in: parsing and checking into domain types before anything is
//! stored.

pub mod media_servers;
pub mod player;
pub mod stream;
