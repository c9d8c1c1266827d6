//! Stations, the catalogue (sounds with tracks), the schedule (diffusions) and the as-run log
//! for operators, one file per resource. Writing needs `admin`, reading `read`.

mod diffusions;
pub(crate) mod onair;
mod sounds;
mod stations;

use actix_web::web;

use super::error::ApiError;
use crate::domain::FieldError;

/// The operations of this module, nested under `/api/v1` by the API document.
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    stations::list_stations,
    stations::put_station,
    stations::get_station,
    stations::put_station_named,
    sounds::list_sounds,
    sounds::put_sound,
    diffusions::list_diffusions,
    diffusions::post_diffusion,
    diffusions::get_diffusion,
    diffusions::put_diffusion,
    onair::list_onair,
    onair::onair_now
))]
pub struct Doc;

/// Registers the routes under `/api/v1`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/stations/", web::get().to(stations::list_stations))
        .route("/stations/", web::post().to(stations::put_station))
        .route("/stations/{name}", web::get().to(stations::get_station))
        .route(
            "/stations/{name}",
            web::put().to(stations::put_station_named),
        )
        .route("/sounds/", web::get().to(sounds::list_sounds))
        .route("/sounds/", web::post().to(sounds::put_sound))
        .route("/diffusions/", web::get().to(diffusions::list_diffusions))
        .route("/diffusions/", web::post().to(diffusions::post_diffusion))
        .route("/diffusions/{id}", web::get().to(diffusions::get_diffusion))
        .route("/diffusions/{id}", web::put().to(diffusions::put_diffusion))
        .route("/onair/", web::get().to(onair::list_onair))
        .route("/onair/now", web::get().to(onair::onair_now));
}

/// A 400 naming the fields at fault.
fn invalid(details: Vec<FieldError>) -> ApiError {
    let names: Vec<String> = details.iter().map(|d| d.field.clone()).collect();
    ApiError::validation(format!("invalid fields: {}", names.join(", ")), details)
}
