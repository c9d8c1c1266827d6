//! The edges where events come in: parsing and checking before anything is stored.

pub mod stream;
pub mod time;
