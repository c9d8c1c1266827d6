//! The console's stylesheet and script, compiled into the binary. Their paths carry a hash of
//! their content, so browsers may keep them for a year and still get a new one with a new
//! airlog.

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use std::sync::LazyLock;

use super::error::ConsoleError;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

/// The stylesheet's path (with its content hash).
pub static CSS_PATH: LazyLock<String> = LazyLock::new(|| path("console", "css", CSS));
/// The script's path (with its content hash).
pub static JS_PATH: LazyLock<String> = LazyLock::new(|| path("console", "js", JS));

fn path(stem: &str, ext: &str, body: &str) -> String {
    let hash = crate::auth::hash_token(body);
    format!("/console/assets/{stem}.{}.{ext}", &hash[..12])
}

/// `GET /console/assets/{name}`.
pub async fn serve(name: web::Path<String>) -> Result<HttpResponse, ConsoleError> {
    let asked = format!("/console/assets/{}", name.into_inner());
    let (body, kind) = if asked == *CSS_PATH {
        (CSS, "text/css; charset=utf-8")
    } else if asked == *JS_PATH {
        (JS, "text/javascript; charset=utf-8")
    } else {
        return Err(ConsoleError::NotFound("No such file.".into()));
    };
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"))
        .content_type(kind)
        .body(body))
}

/// `GET /console`: the console lives under `/console/`.
pub async fn to_console() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}
