//! `airlog report audience`: the audience report in a terminal, or as CSV or JSON.

use diesel::PgConnection;

use super::AudienceArgs;
use crate::config::Settings;
use crate::reports::audience::{self, Asked};

/// Checks the request like the API does, computes and prints the report.
pub(super) fn audience(
    conn: &mut PgConnection,
    settings: &Settings,
    args: AudienceArgs,
) -> anyhow::Result<()> {
    let asked = Asked {
        station: args.station,
        from: Some(args.from),
        until: Some(args.until),
        interval: Some(args.interval),
        daypart: args.daypart,
        by: args.by,
    };
    let query = match audience::check(conn, settings, &asked)? {
        Ok(q) => q,
        Err(problems) => {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("--{}: {}", p.field, p.message))
                .collect();
            anyhow::bail!("{}", lines.join("; "));
        }
    };
    let report = audience::compute(conn, settings, query)?;
    match args.format.as_str() {
        "csv" => print!("{}", audience::to_csv(&report)),
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => print!("{}", audience::to_table(&report)),
    }
    Ok(())
}
