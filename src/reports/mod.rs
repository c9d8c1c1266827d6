//! Reports built from the database and the domain's rules, answered by the API and the
//! command line alike.

pub mod audience;
pub mod music;
pub mod programme_log;
pub mod request;
