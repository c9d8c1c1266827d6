//! What a delivery sends: the generic JSON body (its schema is in the API document as
//! `WebhookBody`) and the presets' shapes, and the signature over the exact bytes sent.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use reqwest::{Method, Url};
use serde::Serialize;
use sha2::Sha256;

use crate::db::webhooks::{DeliveryRow, EntryFacts};
use crate::domain::webhook::{Event, Preset};

/// The generic body of every event (preset `generic`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct WebhookBody {
    /// The event (also in `X-Airlog-Event`).
    pub event: String,
    /// The delivery's unique id (also in `X-Airlog-Delivery`): a receiver drops repeats by it.
    pub delivery: uuid::Uuid,
    /// The station's name, when the event is a station's.
    pub station: Option<String>,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What is playing, for `on_air` and `track`.
    pub now_playing: Option<NowPlaying>,
    /// The as-run log entry, for events that have one.
    pub entry: Option<EntryBody>,
    /// The scheduled diffusion, for `diffusion_start` and `diffusion_cancel`.
    pub diffusion: Option<DiffusionBody>,
    /// What events without an entry carry (`station_offline`: `since`; `ping`: a sample).
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
}

/// The song or show on air.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct NowPlaying {
    pub artist: String,
    pub title: String,
    /// The sound's length in seconds, when known (not the track's).
    pub duration_s: Option<f64>,
    /// The sound's path in the catalogue.
    pub path: Option<String>,
}

/// An as-run log entry as a webhook reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryBody {
    pub id: i64,
    /// `on_air`, `start` or `cancel`.
    pub r#type: String,
    pub date: DateTime<Utc>,
    pub source: String,
    pub comment: String,
    /// Seconds into the sound at `date` (a resumed sound).
    pub position_s: f64,
}

/// A scheduled diffusion as a webhook reports it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DiffusionBody {
    pub id: i64,
    pub title: String,
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

/// A request ready to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub method: Method,
    pub url: Url,
    pub body: Vec<u8>,
    pub content_type: Option<&'static str>,
    /// `Authorization: Bearer` (Mastodon's access token).
    pub bearer: Option<String>,
}

/// The generic body of a delivery.
pub fn generic(
    d: &DeliveryRow,
    facts: Option<&EntryFacts>,
    station: Option<String>,
) -> WebhookBody {
    let event = Event::parse(&d.event);
    let now_playing = facts
        .filter(|_| event.is_some_and(Event::is_now_playing))
        .map(|f| {
            let (artist, title) = match (&f.track_title, &f.track_artist) {
                (Some(t), Some(a)) => (a.clone(), t.clone()),
                _ => {
                    let title = f.sound_title.clone().filter(|t| !t.is_empty());
                    let fallback = || {
                        if f.comment.is_empty() {
                            f.path.as_deref().map(file_stem).unwrap_or_default()
                        } else {
                            f.comment.clone()
                        }
                    };
                    (
                        f.sound_artist.clone().unwrap_or_default(),
                        title.unwrap_or_else(fallback),
                    )
                }
            };
            NowPlaying {
                artist,
                title,
                duration_s: f.sound_duration_s,
                path: f.path.clone(),
            }
        });
    WebhookBody {
        event: d.event.clone(),
        delivery: d.uuid,
        station: facts.map(|f| f.station.clone()).or(station),
        at: facts.map_or(d.created_at, |f| f.date),
        now_playing,
        entry: facts.map(|f| EntryBody {
            id: f.entry_id,
            r#type: f.entry_type.clone(),
            date: f.date,
            source: f.source.clone(),
            comment: f.comment.clone(),
            position_s: f.position_s,
        }),
        diffusion: facts.and_then(|f| {
            f.diffusion_id.map(|id| DiffusionBody {
                id,
                title: f.diffusion_title.clone().unwrap_or_default(),
                start: f.diffusion_start,
                end: f.diffusion_end,
            })
        }),
        data: d.payload.clone(),
    }
}

fn file_stem(path: &str) -> String {
    std::path::Path::new(path)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// One line for people (Discord, Mastodon).
pub fn headline(b: &WebhookBody) -> String {
    let station = b.station.as_deref().unwrap_or("airlog");
    let diffusion = || {
        b.diffusion
            .as_ref()
            .map_or("", |d| d.title.as_str())
            .to_string()
    };
    match Event::parse(&b.event) {
        Some(Event::OnAir | Event::Track) => match &b.now_playing {
            Some(np) if !np.artist.is_empty() => {
                format!("Now playing on {station}: {} – {}", np.artist, np.title)
            }
            Some(np) => format!("Now playing on {station}: {}", np.title),
            None => format!("Now playing on {station}"),
        },
        Some(Event::DiffusionStart) => format!("On air on {station}: {}", diffusion()),
        Some(Event::DiffusionCancel) => format!("Cancelled on {station}: {}", diffusion()),
        Some(Event::StationOffline) => format!("{station} is off air"),
        Some(Event::StationOnline) => format!("{station} is back on air"),
        Some(Event::Listeners) => {
            let n = b
                .data
                .as_ref()
                .and_then(|d| d["listeners"].as_i64())
                .unwrap_or(0);
            format!("{station}: {n} listening now")
        }
        Some(Event::Ping) | None => format!("Test message from airlog ({station})"),
    }
}

/// The request a preset makes of a delivery's body.
pub fn outgoing(preset: Preset, url: &Url, secret: &str, b: &WebhookBody) -> Outgoing {
    let json = |v: &serde_json::Value| serde_json::to_vec(v).expect("JSON values serialise");
    match preset {
        Preset::Generic => Outgoing {
            method: Method::POST,
            url: url.clone(),
            body: serde_json::to_vec(b).expect("bodies serialise"),
            content_type: Some("application/json"),
            bearer: None,
        },
        Preset::Discord => Outgoing {
            method: Method::POST,
            url: url.clone(),
            // Discord refuses content over 2000 characters.
            body: json(&serde_json::json!({
                "username": "airlog",
                "content": headline(b).chars().take(2000).collect::<String>(),
            })),
            content_type: Some("application/json"),
            bearer: None,
        },
        Preset::Tunein => {
            // TuneIn AIR takes the song in the query of a GET; the URL carries the partner id,
            // key and station id.
            let mut url = url.clone();
            if let Some(np) = &b.now_playing {
                url.query_pairs_mut()
                    .append_pair("title", &np.title)
                    .append_pair("artist", &np.artist);
            }
            Outgoing {
                method: Method::GET,
                url,
                body: Vec::new(),
                content_type: None,
                bearer: None,
            }
        }
        Preset::Mastodon => Outgoing {
            method: Method::POST,
            url: url.clone(),
            body: json(&serde_json::json!({
                "status": headline(b).chars().take(500).collect::<String>(),
                "visibility": "unlisted",
            })),
            content_type: Some("application/json"),
            bearer: Some(secret.to_string()),
        },
    }
}

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`, the `X-Airlog-Signature` header.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    fn delivery(event: &str) -> DeliveryRow {
        DeliveryRow {
            id: 1,
            uuid: uuid::Uuid::nil(),
            endpoint_id: 1,
            event: event.into(),
            log_id: Some(7),
            status: "pending".into(),
            attempts: 0,
            created_at: Utc::now(),
            next_attempt_at: Utc::now(),
            last_attempt_at: None,
            delivered_at: None,
            response_status: None,
            latency_ms: None,
            response_excerpt: None,
            last_error: None,
            coalesced_into: None,
            redelivery_of: None,
            station_id: Some(1),
            payload: None,
        }
    }

    fn track() -> EntryFacts {
        EntryFacts {
            station: "radio".into(),
            entry_id: 7,
            entry_type: "on_air".into(),
            date: Utc::now(),
            source: "liquidsoap".into(),
            comment: "A - B".into(),
            path: Some("/music/show.mp3".into()),
            position_s: 0.0,
            sound_title: Some("Show".into()),
            sound_artist: Some("Host".into()),
            sound_duration_s: Some(3600.0),
            track_title: Some("Song".into()),
            track_artist: Some("Band".into()),
            diffusion_id: None,
            diffusion_title: None,
            diffusion_start: None,
            diffusion_end: None,
        }
    }

    #[test]
    fn presets_shape_the_song_on_air() {
        let b = generic(&delivery("track"), Some(&track()), None);
        let np = b.now_playing.as_ref().unwrap();
        assert_eq!((np.artist.as_str(), np.title.as_str()), ("Band", "Song"));
        let url = Url::parse("https://air.radiotime.com/Playing.ashx?partnerId=p&id=s1").unwrap();
        let t = outgoing(Preset::Tunein, &url, "k", &b);
        assert_eq!(t.method, Method::GET);
        assert_eq!(
            t.url.query(),
            Some("partnerId=p&id=s1&title=Song&artist=Band")
        );
        let d = outgoing(Preset::Discord, &url, "k", &b);
        let v: serde_json::Value = serde_json::from_slice(&d.body).unwrap();
        assert_eq!(v["content"], "Now playing on radio: Band – Song");
        let m = outgoing(Preset::Mastodon, &url, "token", &b);
        assert_eq!(m.bearer.as_deref(), Some("token"));
    }
}
