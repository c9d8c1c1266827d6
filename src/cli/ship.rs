//! `airlog ship` and `airlog import-log`: access logs to stream events.

use std::path::PathBuf;

use anyhow::{bail, Context};

use super::{ImportArgs, SendArgs, ShipArgs};

/// The checked sending options of either command.
fn ship_options(send: &SendArgs, max_delay: f64) -> anyhow::Result<crate::ship::ShipOptions> {
    let token = std::fs::read_to_string(&send.token_file)
        .with_context(|| format!("cannot read the token file {}", send.token_file.display()))?
        .trim()
        .to_string();
    if token.is_empty() {
        bail!("the token file {} is empty", send.token_file.display());
    }
    if !send.to.starts_with("http://") && !send.to.starts_with("https://") {
        bail!("--to must be an http:// or https:// URL, got {:?}", send.to);
    }
    if send.batch_size == 0 || send.batch_size > 10_000 {
        bail!("--batch-size must be 1 to 10000");
    }
    if !(send.max_disorder.is_finite() && (0.0..=600.0).contains(&send.max_disorder)) {
        bail!("--max-disorder must be 0 to 600 seconds");
    }
    let gap_ok = send.session_gap.is_finite() && send.session_gap > 0.0;
    let delay_ok = max_delay.is_finite() && max_delay >= 0.0;
    if !gap_ok || !delay_ok {
        bail!("--session-gap and --max-delay must be positive numbers of seconds");
    }
    Ok(crate::ship::ShipOptions {
        format: send.format,
        to: send.to.clone(),
        token,
        batch_size: send.batch_size,
        max_delay: std::time::Duration::from_secs_f64(max_delay),
        session_gap: std::time::Duration::from_secs_f64(send.session_gap),
        max_disorder: std::time::Duration::from_secs_f64(send.max_disorder),
        bot_allow: send.bot_allow.clone(),
        bot_deny: send.bot_deny.clone(),
        metrics_file: send.metrics_file.clone(),
        rotate_grace: std::time::Duration::from_secs(30),
    })
}

/// Follows a log until a signal.
pub(super) fn ship(args: ShipArgs) -> anyhow::Result<()> {
    let mut opts = ship_options(&args.send, args.max_delay)?;
    if !(args.rotate_grace.is_finite() && (0.0..=86_400.0).contains(&args.rotate_grace)) {
        bail!("--rotate-grace must be 0 to 86400 seconds");
    }
    opts.rotate_grace = std::time::Duration::from_secs_f64(args.rotate_grace);
    let state = args.state.clone().unwrap_or_else(|| {
        let mut name = args.log.clone().into_os_string();
        name.push(".airlog-ship");
        PathBuf::from(name)
    });
    super::run_until_signalled(|shutdown| async move {
        let c = crate::ship::ship(&args.log, &state, &opts, shutdown).await?;
        eprintln!(
            "shipped {} events ({} new, {} duplicates) from {} lines",
            c.events_sent, c.events_created, c.events_duplicate, c.lines
        );
        Ok(())
    })
}

/// Sends old log files in one go, with a progress bar.
pub(super) fn import(args: ImportArgs) -> anyhow::Result<()> {
    let opts = ship_options(&args.send, 0.0)?;
    super::run_until_signalled(|shutdown| async move {
        let bar = super::progress_bar(0, "{bar:40} {bytes}/{total_bytes} ({eta} left)");
        let c = crate::ship::import(&args.files, &opts, &bar, shutdown).await?;
        let skipped: u64 = c.skipped.values().sum();
        println!(
            "{} lines: {} events sent ({} new, {} duplicates, {} dropped), {} skipped by the audience rules, {} unparsable, {} cleaned",
            c.lines, c.events_sent, c.events_created, c.events_duplicate, c.dropped_total(), skipped, c.unparsable, c.cleaned
        );
        for (reason, n) in &c.dropped {
            println!("  dropped {n}: {reason}");
        }
        Ok(())
    })
}
