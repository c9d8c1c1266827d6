//! The playout aggregate: stations, the catalogue, the schedule, the pushes to Liquidsoap and
//! the as-run log, one file of queries per table (with its child tables). Everything is
//! re-exported here, as the monitors use them together.

mod diffusions;
mod log;
mod pushes;
mod sounds;
mod stations;

pub use diffusions::*;
pub use log::*;
pub use pushes::*;
pub use sounds::*;
pub use stations::*;
