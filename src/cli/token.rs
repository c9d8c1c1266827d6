//! `airlog token create|list|revoke`: API tokens.

use anyhow::bail;
use diesel::PgConnection;

use super::TokenCommand;
use crate::auth;
use crate::db::tokens;

/// Runs a `token` command.
pub(super) fn run(conn: &mut PgConnection, cmd: TokenCommand) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Create { name, mut scopes } => {
            let name = name.trim();
            if name.is_empty() {
                bail!("--name must not be empty");
            }
            scopes.sort_by_key(|s| s.as_str());
            scopes.dedup();
            let token = auth::generate_token()?;
            let row = tokens::NewToken {
                name,
                prefix: &token.prefix,
                hash: &token.hash,
                scopes: scopes.iter().map(|s| s.as_str().to_string()).collect(),
            };
            match tokens::insert(conn, &row) {
                Ok(_) => {}
                Err(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _,
                )) => bail!(
                    "an active token named {name:?} exists; revoke it first or pick another name"
                ),
                Err(e) => return Err(e.into()),
            }
            eprintln!("token {name:?} created; it is shown once, store it now:");
            println!("{}", token.secret);
            Ok(())
        }
        TokenCommand::List => {
            let rows = tokens::list(conn)?;
            if rows.is_empty() {
                println!(
                    "no tokens; create one with `airlog token create --name NAME --scope read`"
                );
            }
            for t in rows {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {}", at.format("%Y-%m-%d %H:%M")),
                    None => "active".to_string(),
                };
                let used = t
                    .last_used_at
                    .map(|at| at.format("%Y-%m-%d %H:%M").to_string())
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<24} {}…  scopes={:<18} created={} last_used={} {}",
                    t.name,
                    t.prefix,
                    t.scopes.join(","),
                    t.created_at.format("%Y-%m-%d %H:%M"),
                    used,
                    state
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { name } => {
            if tokens::revoke(conn, &name)? == 0 {
                bail!("no active token named {name:?}");
            }
            println!("token {name:?} revoked");
            Ok(())
        }
    }
}
