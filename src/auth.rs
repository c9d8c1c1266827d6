//! API tokens: generation, hashing and scopes (the API's extractor is `api::auth`).
//!
//! A token is 40 random hex characters, shown once at creation. The database keeps its first
//! 8 characters (to find the row) and the SHA-256 of the whole token, compared in constant time.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Random bytes in a token (shown as twice as many hex characters).
pub const TOKEN_BYTES: usize = 20;
/// Leading characters of a token stored in clear, to find its row.
pub const PREFIX_LEN: usize = 8;

/// What a token may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Scope {
    /// Send stream and player events.
    Ingest,
    /// Read statistics, logs and exports.
    Read,
    /// Manage the catalogue, schedules and jobs (implies the other scopes).
    Admin,
}

impl Scope {
    /// The name stored in the database and shown to people.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Scope, String> {
        match s {
            "ingest" => Ok(Scope::Ingest),
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            other => Err(format!(
                "unknown scope {other:?} (expected ingest, read or admin)"
            )),
        }
    }
}

/// A freshly generated token: the secret to show once, and what to store.
pub struct GeneratedToken {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

/// Makes a new random token.
pub fn generate_token() -> anyhow::Result<GeneratedToken> {
    let mut bytes = [0u8; TOKEN_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness available: {e}"))?;
    let secret = hex::encode(bytes);
    Ok(GeneratedToken {
        prefix: secret[..PREFIX_LEN].to_string(),
        hash: hash_token(&secret),
        secret,
    })
}

/// The stored form of a token.
pub fn hash_token(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_hex_and_hash_to_what_is_stored() {
        let t = generate_token().unwrap();
        assert_eq!(t.secret.len(), 40);
        assert!(t.secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(t.prefix, &t.secret[..8]);
        assert_eq!(t.hash, hash_token(&t.secret));
        assert_ne!(generate_token().unwrap().secret, t.secret);
    }
}
