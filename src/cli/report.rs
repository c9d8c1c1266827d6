//! `airlog report audience`: the audience report in a terminal, or as CSV or JSON; `airlog
//! report soundexchange|music|programme-log|coverage`: the report files of the API.

use diesel::PgConnection;

use super::{AudienceArgs, FileReportArgs, ReportCommand};
use crate::config::Settings;
use crate::reports::audience::{self, Asked};
use crate::reports::request::Kind;

/// Runs a `report` command.
pub(super) fn run(
    conn: &mut PgConnection,
    settings: &Settings,
    cmd: ReportCommand,
) -> anyhow::Result<()> {
    match cmd {
        ReportCommand::Audience(args) => audience(conn, settings, args),
        ReportCommand::Soundexchange(a) => file(conn, settings, Kind::Soundexchange, a),
        ReportCommand::Music(a) => file(conn, settings, Kind::Music, a),
        ReportCommand::ProgrammeLog(a) => file(conn, settings, Kind::ProgrammeLog, a),
        ReportCommand::Coverage(a) => file(conn, settings, Kind::Coverage, a),
    }
}

/// Checks the request like the API does, computes and prints the report.
fn audience(
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
    let query = audience::check(conn, settings, &asked)?.map_err(as_flags)?;
    let report = audience::compute(conn, settings, query)?;
    match args.format.as_str() {
        "csv" => print!("{}", audience::to_csv(&report)),
        "json" => println!("{}", serde_json::to_string_pretty(&report)?),
        _ => print!("{}", audience::to_table(&report)),
    }
    Ok(())
}

/// Makes a report file like `GET /api/v1/reports/{kind}` and writes it to `-o` or standard
/// output; the rules it used go to standard error, with a spinner while it works.
fn file(
    conn: &mut PgConnection,
    settings: &Settings,
    kind: Kind,
    args: FileReportArgs,
) -> anyhow::Result<()> {
    use crate::reports::request::{self, Asked};
    let asked = Asked {
        station: Some(args.station),
        month: args.month,
        from: args.from,
        until: args.until,
        format: args.format,
    };
    let req = request::check(conn, kind, &asked)?.map_err(as_flags)?;
    let spinner = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} ({elapsed})")
            .expect("valid template"),
    );
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let out = request::make(conn, settings, &req, &mut |what| {
        spinner.set_message(what.to_string())
    });
    spinner.finish_and_clear();
    let out = out?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, &out.body)
                .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
            eprintln!("wrote {} ({} bytes)", path.display(), out.body.len());
        }
        None => print!("{}", out.body),
    }
    eprintln!("rules: {}", out.rules);
    if kind == Kind::Soundexchange {
        eprintln!("SoundExchange file name: {}", out.file_name);
    }
    Ok(())
}

/// The problems of a request, named by the flags that gave them.
fn as_flags(problems: Vec<crate::domain::FieldError>) -> anyhow::Error {
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("--{}: {}", p.field, p.message))
        .collect();
    anyhow::anyhow!("{}", lines.join("; "))
}
