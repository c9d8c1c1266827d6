//! The edges where events come in: parsing and checking before anything is stored.

pub mod player;
pub mod stream;
pub mod time;
