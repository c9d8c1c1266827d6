//! Query-string parameters parsed into checked values, collecting every problem so one 400
//! names them all.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::error::ApiError;
use crate::domain::time::parse_time_str;
use crate::domain::FieldError;

/// The parameters of one request and the problems found so far.
pub struct Params {
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

impl Params {
    /// Parses `a=1&b=2`; a repeated name keeps its last value.
    pub fn parse(query: &str) -> Result<Params, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|e| ApiError::BadRequest(format!("the query string cannot be read: {e}")))?;
        Ok(Params {
            values: pairs.into_iter().collect(),
            errors: Vec::new(),
        })
    }

    /// The raw text of a parameter, if given and not empty.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .map(|s| s.as_str())
            .filter(|s| !s.is_empty())
    }

    /// Records a problem with a parameter.
    pub fn problem(&mut self, name: &str, message: impl Into<String>) {
        self.errors.push(FieldError::new(name, message));
    }

    /// A parameter parsed by `parse`, whose error message is recorded under its name.
    pub fn get<T>(
        &mut self,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        let raw = self.text(name)?.to_string();
        match parse(&raw) {
            Ok(v) => Some(v),
            Err(message) => {
                self.problem(name, message);
                None
            }
        }
    }

    /// A whole number within `range`.
    pub fn int(&mut self, name: &str, range: std::ops::RangeInclusive<i64>) -> Option<i64> {
        self.get(name, |s| {
            let n: i64 = s
                .trim()
                .parse()
                .map_err(|_| format!("{s:?} is not a whole number"))?;
            if range.contains(&n) {
                Ok(n)
            } else {
                Err(format!(
                    "{n} is out of range ({} to {})",
                    range.start(),
                    range.end()
                ))
            }
        })
    }

    /// A time in any form the ingest accepts (with an offset).
    pub fn time(&mut self, name: &str) -> Option<DateTime<Utc>> {
        self.get(name, parse_time_str)
    }

    /// Fails with every recorded problem, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid_params(self.errors))
        }
    }
}
