//! The operator console: the pages a station keeps open in the studio (now on air, the as-run
//! log, the schedule, the audience, health), served by `airlog serve` under `/console/`.
//! Server-rendered HTML with a little JavaScript for live updates; assets are compiled in.
//! Its routes are HTML for people, not API operations, so they stay out of `/api/v1` and the
//! OpenAPI document.

mod assets;
mod error;
pub mod live;
mod pages;
mod session;
mod views;

use actix_web::web;

pub use error::ConsoleError;

/// Registers the console's routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/console", web::get().to(assets::to_console))
        .service(
            web::scope("/console")
                // A station name that is not one, or an id that is not a number: the console's
                // own 404 page, not the API's JSON.
                .app_data(web::PathConfig::default().error_handler(|err, _| {
                    ConsoleError::NotFound(format!("No such page: {err}")).into()
                }))
                .route("/", web::get().to(pages::home))
                .route("/go", web::get().to(pages::go))
                .route("/signin", web::get().to(pages::signin_form))
                .route("/signin", web::post().to(pages::signin))
                .route("/signout", web::post().to(pages::signout))
                .route("/assets/{name}", web::get().to(assets::serve))
                .service(
                    web::scope("/stations/{name}")
                        .route("/", web::get().to(pages::now_page))
                        .route("/now", web::get().to(pages::now_fragment))
                        .route("/events", web::get().to(live::events))
                        .route("/log", web::get().to(pages::log_page))
                        .route("/log.csv", web::get().to(pages::log_csv))
                        .route("/log/print", web::get().to(pages::print_page))
                        .route("/schedule", web::get().to(pages::schedule_page))
                        .route("/diffusions", web::post().to(pages::add_diffusion))
                        .route(
                            "/diffusions/{id}/cancel",
                            web::post().to(pages::cancel_diffusion),
                        )
                        .route("/audience", web::get().to(pages::audience_page))
                        .route("/health", web::get().to(pages::health_page)),
                )
                .default_service(web::to(not_found)),
        );
}

async fn not_found() -> Result<actix_web::HttpResponse, ConsoleError> {
    Err(ConsoleError::NotFound(
        "There is no such console page.".into(),
    ))
}
