//! Named domain values (`domain::*` enums declared with `named!`) are stored as `text`: their
//! `as_str` goes in, and a name the type does not know coming out is an error, not a guess.

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Text;

use crate::domain::player_event::{Source, State};
use crate::domain::playout::{DiffusionType, LogType, Streamer};
use crate::domain::stream_event::Origin;

macro_rules! stored_as_text {
    ($($name:ident),+) => {$(
        impl ToSql<Text, Pg> for $name {
            fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
                <str as ToSql<Text, Pg>>::to_sql(self.as_str(), out)
            }
        }

        impl FromSql<Text, Pg> for $name {
            fn from_sql(bytes: PgValue<'_>) -> deserialize::Result<$name> {
                let text = <String as FromSql<Text, Pg>>::from_sql(bytes)?;
                Ok(text.parse::<$name>()?)
            }
        }
    )+};
}

stored_as_text!(Origin, State, Source, Streamer, DiffusionType, LogType);
