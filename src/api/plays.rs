//! `GET /api/v1/plays/` (scope `read`): what mpv played, keyset paged like the stream events.

use actix_web::{web, HttpRequest, HttpResponse};

use super::pagination::{self, Fetched, PageRequest, Start};
use super::params::Params;
use crate::app::AppState;
use crate::auth::{Caller, ReadScope};
use crate::db::mpv::{self as queries, PlayFilter, PlayRow};
use crate::db::stream_events::{Direction, Key};
use crate::db::{self};
use crate::error::ApiError;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/plays/", web::get().to(list));
}

fn flag(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(format!("{s:?} is not true or false")),
    }
}

/// Filters: `item` (path or id), `time_from`, `time_until` (on the start), `listened`,
/// `skipped`, `instance`; paging: `limit`, `cursor`, `offset`.
async fn list(
    _c: Caller<ReadScope>,
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(req.query_string())?;
    let filter = PlayFilter {
        item: params.text("item").map(str::to_string),
        time_from: params.time("time_from"),
        time_until: params.time("time_until"),
        listened: params.get("listened", flag),
        skipped: params.get("skipped", flag),
        instance: params.text("instance").map(str::to_string),
    };
    let page = PageRequest::parse(&mut params, 100, 5000);
    params.finish()?;
    if matches!(page.start, Start::Offset(_)) {
        return Err(ApiError::BadRequest(
            "plays page by cursor only; follow `next`".into(),
        ));
    }
    let request = page.clone();
    let fetched = db::run(
        &state.pool,
        move |c| -> Result<Fetched<PlayRow>, ApiError> {
            let spare = request.limit + 1;
            Ok(match request.start {
                Start::Cursor {
                    key,
                    direction,
                    count,
                } => Fetched {
                    count,
                    rows: queries::play_page(c, &filter, Some(key), direction, spare)?,
                },
                _ => Fetched {
                    count: queries::count_plays(c, &filter)?,
                    rows: queries::play_page(c, &filter, None, Direction::After, spare)?,
                },
            })
        },
    )
    .await?;
    Ok(
        HttpResponse::Ok().json(pagination::build(&req, &page, fetched, |r: &PlayRow| Key {
            time: r.start_time,
            id: r.id,
        })),
    )
}
