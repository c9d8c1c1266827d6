//! The keyset walk over a (time, id) order, for every list that pages by cursor: which rows
//! lie past a key, in which order to read them, and how a page read backwards is turned round.

use crate::domain::Direction;

/// How to read one page from a key: `WHERE (time, id) {op} (key)` and `ORDER BY time {order},
/// id {order}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Walk {
    pub op: &'static str,
    pub order: &'static str,
    /// Whether `order` is ascending (for queries built with diesel's DSL).
    pub ascending: bool,
}

/// The walk of a page in `direction` over a list shown oldest first, or newest first.
pub fn walk(direction: Direction, newest_first: bool) -> Walk {
    // "After" a key is further down the list: later times, or earlier ones newest first.
    if (direction == Direction::After) != newest_first {
        Walk {
            op: ">",
            order: "ASC",
            ascending: true,
        }
    } else {
        Walk {
            op: "<",
            order: "DESC",
            ascending: false,
        }
    }
}

/// A page read before its key comes back nearest first; the list shows it in its own order.
pub fn in_list_order<T>(mut rows: Vec<T>, direction: Direction) -> Vec<T> {
    if direction == Direction::Before {
        rows.reverse();
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_after_a_key_read_down_the_list_and_before_it_up() {
        assert_eq!(walk(Direction::After, false).op, ">");
        assert_eq!(walk(Direction::Before, false).order, "DESC");
        assert_eq!(walk(Direction::After, true).op, "<");
        assert!(walk(Direction::Before, true).ascending);
        assert_eq!(in_list_order(vec![3, 2, 1], Direction::Before), [1, 2, 3]);
        assert_eq!(in_list_order(vec![1, 2], Direction::After), [1, 2]);
    }
}
