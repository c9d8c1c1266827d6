//! Who looks at the console: a browser session made once from a pasted API token (or a trusted
//! proxy's identity header), held in an HttpOnly, SameSite=Strict cookie. The cookie carries a
//! random id; the database keeps its SHA-256 only. Every form POST carries the session's form
//! token (CSRF), checked here.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::{web, FromRequest, HttpRequest};
use chrono::Utc;
use subtle::ConstantTimeEq;

use super::error::ConsoleError;
use crate::api::AppState;
use crate::auth::{hash_token, Scope, TOKEN_BYTES};
use crate::db::{self, console, tokens};

/// The session cookie.
pub const COOKIE: &str = "airlog_console";
/// The short-lived cookie that pairs the sign-in form with the browser that loaded it.
pub const SIGNIN_COOKIE: &str = "airlog_console_signin";

/// A signed-in person and what they may do.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The token's name, or the proxy's user name.
    pub identity: String,
    pub admin: bool,
    /// The form token every POST of this session must carry.
    pub csrf: String,
}

impl Viewer {
    /// Refuses a change to anyone without the `admin` scope.
    pub fn must_be_admin(&self) -> Result<(), ConsoleError> {
        if self.admin {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(format!(
                "{} may look but not change: this needs a token with the admin scope.",
                self.identity
            )))
        }
    }

    /// Refuses a form whose token is missing or is not this session's.
    pub fn check_csrf(&self, presented: Option<&str>) -> Result<(), ConsoleError> {
        let ok = presented.is_some_and(|p| bool::from(p.as_bytes().ct_eq(self.csrf.as_bytes())));
        if ok {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden(
                "This form has expired or did not come from the console; reload the page and try again."
                    .into(),
            ))
        }
    }
}

/// A fresh random value (cookie ids, form tokens), as 64 hex characters.
pub fn random_hex() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ConsoleError::Internal(anyhow::anyhow!("no randomness available: {e}")))?;
    Ok(hex::encode(bytes))
}

/// Where to go back to after signing in: a console path, nothing else (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/console/") && !n.contains("//") && !n.contains('\\') => {
            n.to_string()
        }
        _ => "/console/".to_string(),
    }
}

fn path_and_query(req: &HttpRequest) -> String {
    match req.query_string() {
        "" => req.path().to_string(),
        q => format!("{}?{q}", req.path()),
    }
}

impl FromRequest for Viewer {
    type Error = ConsoleError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ConsoleError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let cookie = req.cookie(COOKIE).map(|c| c.value().to_string());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        // A page asked for without a session comes back to itself after signing in; a POST
        // (whose form is lost anyway) goes back to the console's start.
        let next = if req.method() == actix_web::http::Method::GET {
            path_and_query(req)
        } else {
            "/console/".into()
        };
        Box::pin(async move {
            let state = state.ok_or_else(|| anyhow::anyhow!("application state is missing"))?;
            let Some(id) = cookie.filter(|c| c.len() == 64) else {
                return Err(ConsoleError::SignIn { next });
            };
            let id_hash = hash_token(&id);
            let row = db::run(&state.pool, move |c| console::session(c, &id_hash))
                .await?
                .ok_or(ConsoleError::SignIn { next })?;
            let can = |s: Scope| row.scopes.iter().any(|x| x == s.as_str());
            if !can(Scope::Read) && !can(Scope::Admin) {
                return Err(ConsoleError::Forbidden(format!(
                    "{} may not read the console.",
                    row.identity
                )));
            }
            Ok(Viewer {
                admin: can(Scope::Admin),
                identity: row.identity,
                csrf: row.csrf,
            })
        })
    }
}

/// Who a sign-in is for: a token's row, or a proxy's user.
pub enum Credential {
    Token(String),
    Proxy(String),
}

/// Checks the credential and stores a new session; returns the cookie to set. A token needs
/// the `read` or `admin` scope.
pub async fn sign_in(
    state: &AppState,
    credential: Credential,
    secure: bool,
) -> Result<Cookie<'static>, ConsoleError> {
    let id = random_hex()?;
    let csrf = random_hex()?;
    let hours = state.settings.console.session_hours.max(1);
    let expires_at = Utc::now() + chrono::Duration::hours(hours as i64);
    let proxy_scope = state.settings.console.proxy_scope;
    let id_hash = hash_token(&id);
    db::run(&state.pool, move |c| -> Result<(), ConsoleError> {
        let (token_id, identity, scopes) = match credential {
            Credential::Token(key) => {
                let key = key.trim().to_ascii_lowercase();
                let refused = || ConsoleError::Forbidden("That token is not valid.".into());
                if key.len() != TOKEN_BYTES * 2 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(refused());
                }
                let row = tokens::verify(c, &key)?.ok_or_else(refused)?;
                (Some(row.id), row.name, row.scopes)
            }
            Credential::Proxy(user) => (None, user, vec![proxy_scope.as_str().to_string()]),
        };
        if !scopes.iter().any(|s| s == "read" || s == "admin") {
            return Err(ConsoleError::Forbidden(format!(
                "{identity} has neither the read nor the admin scope; the console needs one."
            )));
        }
        tracing::info!(identity = identity.as_str(), "console sign-in");
        console::insert_session(
            c,
            &console::NewSession {
                id_hash: &id_hash,
                token_id,
                identity: &identity,
                scopes: &scopes,
                csrf: &csrf,
                expires_at,
            },
        )?;
        Ok(())
    })
    .await?;
    Ok(session_cookie(
        COOKIE,
        id,
        CookieDuration::hours(hours as i64),
        secure,
    ))
}

/// Ends the session the request carries, if any; returns the cookie that clears it.
pub async fn sign_out(
    state: &AppState,
    req: &HttpRequest,
) -> Result<Cookie<'static>, ConsoleError> {
    if let Some(c) = req.cookie(COOKIE) {
        let id_hash = hash_token(c.value());
        db::run(&state.pool, move |c| console::delete_session(c, &id_hash)).await?;
    }
    Ok(session_cookie(
        COOKIE,
        String::new(),
        CookieDuration::ZERO,
        is_secure(state, req),
    ))
}

/// A console cookie: HttpOnly, SameSite=Strict, for the console's paths only.
pub fn session_cookie(
    name: &'static str,
    value: String,
    max_age: CookieDuration,
    secure: bool,
) -> Cookie<'static> {
    Cookie::build(name, value)
        .path("/console/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(max_age)
        .finish()
}

/// Whether cookies should be marked Secure: the console is reached over HTTPS.
pub fn is_secure(state: &AppState, req: &HttpRequest) -> bool {
    state.settings.server.public_url.starts_with("https://")
        || req.connection_info().scheme() == "https"
}

/// The user a trusted proxy vouches for, when the console is set up to believe one.
pub fn proxy_user(state: &AppState, req: &HttpRequest) -> Option<String> {
    let header = &state.settings.console.proxy_user_header;
    if header.is_empty() {
        return None;
    }
    let peer = req.peer_addr()?.ip();
    if !state.settings.player.trusted_proxies.contains(&peer) {
        return None;
    }
    let user = req.headers().get(header.as_str())?.to_str().ok()?.trim();
    (!user.is_empty() && !user.contains('\0') && user.len() <= 200).then(|| user.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_signing_in_only_console_paths_are_followed() {
        assert_eq!(
            safe_next(Some("/console/stations/main/log?day=2024-10-26")),
            "/console/stations/main/log?day=2024-10-26"
        );
        for elsewhere in [
            "https://evil.example/",
            "//evil.example/console/",
            "/console/..//evil",
            "/api/v1/tokens/",
            "/console\\x",
        ] {
            assert_eq!(safe_next(Some(elsewhere)), "/console/", "{elsewhere}");
        }
        assert_eq!(safe_next(None), "/console/");
    }

    #[test]
    fn form_tokens_must_match_the_session() {
        let v = Viewer {
            identity: "x".into(),
            admin: false,
            csrf: "a".repeat(64),
        };
        assert!(v.check_csrf(Some(&"a".repeat(64))).is_ok());
        assert!(v.check_csrf(Some(&"b".repeat(64))).is_err());
        assert!(v.check_csrf(None).is_err());
        assert!(v.must_be_admin().is_err());
    }
}
