//! The domain: what airlog knows about stream events, player events, plays and the as-run log,
//! with the rules that need nothing but their inputs. Nothing here does I/O, holds a database
//! connection or knows HTTP; the edges (`ingest`, `api`, `ship`, the monitors) parse into these
//! types and `db` stores them.

/// Declares a closed set of values that are stored and sent by name (a `text` column with a
/// CHECK constraint): `as_str`, `parse`, `FromStr` and `Serialize` all use the same names.
macro_rules! named {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored and sent name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// The value of a stored or sent name.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }

            /// Every name, comma-separated, for messages.
            pub fn names() -> String {
                [$($text),+].join(", ")
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<$name, String> {
                $name::parse(s).ok_or_else(|| format!("{s:?} is not one of {}", $name::names()))
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub mod field_error;
pub mod keyset;
pub mod play;
pub mod player_event;
pub mod playout;
pub mod recording;
pub mod robots;
pub mod stream_event;
pub mod time;
pub mod webhook;

pub use field_error::FieldError;
pub use keyset::{Direction, Key};
