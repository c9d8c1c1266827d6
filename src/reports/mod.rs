//! Reports built from the database and the domain's rules, answered by the API and the
//! command line alike.

pub mod audience;
pub mod music;
pub mod programme_log;
pub mod request;

/// RFC 4180 quoting: a field with a comma, quote or line break is quoted, quotes doubled.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
