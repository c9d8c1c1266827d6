//! Positions in a (time, id) order: what keyset pages continue from.

use chrono::{DateTime, Utc};

/// A position in a (time, id) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub time: DateTime<Utc>,
    pub id: i64,
}

/// Which way a keyset page reads from its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    After,
    Before,
}
