//! Media servers' playback notifications (Jellyfin's webhook plugin, Plex, Emby) read into
//! trusted player events: who (the server's user), on which device, what item, for how long,
//! and what the player did. Parsing is pure; the API posts the result through the same checks
//! as any trusted player event.

use std::net::IpAddr;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{json, Value};

use crate::domain::player_event::State;
use crate::domain::stream_event::device_key;
use crate::domain::FieldError;

/// A media server airlog reads notifications from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    Jellyfin,
    Plex,
    Emby,
}

impl Server {
    /// The name in the URL and in identities.
    pub fn as_str(self) -> &'static str {
        match self {
            Server::Jellyfin => "jellyfin",
            Server::Plex => "plex",
            Server::Emby => "emby",
        }
    }

    /// The server named in a URL.
    pub fn parse(name: &str) -> Option<Server> {
        [Server::Jellyfin, Server::Plex, Server::Emby]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// Where in this server's notification a field of the player event came from, so a
    /// refusal names what the server sent.
    pub fn field_of(self, event_field: &str) -> &'static str {
        use Server::*;
        match (self, event_field) {
            (Jellyfin, "time") => "UtcTimestamp",
            (Emby, "time") => "Date",
            (Plex, "time") => "(arrival)",
            (Jellyfin, "objKey") => "ItemId",
            (Plex, "objKey") => "Metadata.ratingKey",
            (Emby, "objKey") => "Item.Id",
            (Jellyfin, "duration") => "RunTimeTicks",
            (Plex, "duration") => "Metadata.duration",
            (Emby, "duration") => "Item.RunTimeTicks",
            (Jellyfin, "user_identity") => "UserId",
            (Plex, "user_identity") => "Account.id",
            (Emby, "user_identity") => "User.Id",
            (Jellyfin, "device_key") => "DeviceId",
            (Plex, "device_key") => "Player.uuid",
            (Emby, "device_key") => "Session.DeviceId",
            _ => "body",
        }
    }

    /// The multipart field that holds the JSON, for servers that send forms.
    pub fn form_field(self) -> &'static str {
        match self {
            Server::Plex => "payload",
            Server::Jellyfin | Server::Emby => "data",
        }
    }
}

/// What one notification reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    /// The server's own name for the event (`media.play`, `PlaybackStart`, ...).
    pub event: String,
    /// What the player does from now on; None: the event is not about playing (a library
    /// update, a scrobble, a rating) and stores nothing.
    pub state: Option<State>,
    pub time: DateTime<Utc>,
    pub user: String,
    pub device: String,
    /// The player's address, when the server says it.
    pub address: Option<IpAddr>,
    pub item: String,
    pub title: Option<String>,
    pub duration_s: Option<f64>,
}

/// Reads a notification; the error names the field at fault.
pub fn parse(
    server: Server,
    body: &Value,
    received: DateTime<Utc>,
) -> Result<Notification, FieldError> {
    if !body.is_object() {
        return Err(FieldError::new("body", "must be a JSON object"));
    }
    match server {
        Server::Jellyfin => jellyfin(body, received),
        Server::Plex => plex(body, received),
        Server::Emby => emby(body, received),
    }
}

/// The text at a JSON pointer (`/Account/title`); numbers are taken as their text (ids).
fn text(body: &Value, pointer: &str) -> Option<String> {
    match body.pointer(pointer)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A field as the error names it: `/Account/title` is `Account.title`.
fn field(pointer: &str) -> String {
    pointer[1..].replace('/', ".")
}

fn required(body: &Value, pointer: &str) -> Result<String, FieldError> {
    text(body, pointer).ok_or_else(|| FieldError::new(field(pointer), "is missing"))
}

/// A number at a pointer, also when sent as text (Jellyfin's templates quote some).
fn number(body: &Value, pointer: &str) -> Option<f64> {
    match body.pointer(pointer)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite() && *n > 0.0)
}

fn flag(body: &Value, pointer: &str) -> bool {
    match body.pointer(pointer) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// .NET ticks (100 ns) to seconds.
fn ticks_s(ticks: f64) -> f64 {
    ticks / 10_000_000.0
}

/// A time the server sent (RFC 3339, with an offset), else when it arrived. Arrival times are
/// cut to the second, so a notification the server repeats at once is one event.
fn time_of(
    body: &Value,
    pointers: &[&str],
    received: DateTime<Utc>,
) -> Result<DateTime<Utc>, FieldError> {
    for p in pointers {
        if let Some(t) = text(body, p) {
            return DateTime::parse_from_rfc3339(&t)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| {
                    FieldError::new(
                        field(p),
                        format!("is not an RFC 3339 time with an offset: {e}"),
                    )
                });
        }
    }
    Ok(received.trunc_subsecs(0))
}

fn address(body: &Value, pointer: &str) -> Option<IpAddr> {
    let raw = text(body, pointer)?;
    // Emby may add the port; IPv6 literals come bare or in brackets.
    raw.parse()
        .ok()
        .or_else(|| raw.parse::<std::net::SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| raw.trim_start_matches('[').split(']').next()?.parse().ok())
}

/// Jellyfin's webhook plugin, Generic destination, with the template the README gives.
fn jellyfin(body: &Value, received: DateTime<Utc>) -> Result<Notification, FieldError> {
    let event = required(body, "/NotificationType")?;
    let state = match event.as_str() {
        "PlaybackStart" => Some(State::Playing),
        "PlaybackProgress" if flag(body, "/IsPaused") => Some(State::Paused),
        "PlaybackProgress" => Some(State::Playing),
        "PlaybackStop" => Some(State::Stopped),
        _ => None,
    };
    Ok(Notification {
        state,
        time: time_of(body, &["/UtcTimestamp"], received)?,
        user: required(body, "/UserId")?,
        device: required(body, "/DeviceId")?,
        address: address(body, "/RemoteEndPoint"),
        item: required(body, "/ItemId")?,
        title: text(body, "/Name"),
        duration_s: number(body, "/RunTimeTicks").map(ticks_s),
        event,
    })
}

/// Plex's webhook (the `payload` field of its multipart POST).
fn plex(body: &Value, received: DateTime<Utc>) -> Result<Notification, FieldError> {
    let event = required(body, "/event")?;
    let state = match event.as_str() {
        "media.play" | "media.resume" => Some(State::Playing),
        "media.pause" => Some(State::Paused),
        "media.stop" => Some(State::Stopped),
        // media.scrobble (watched to 90 %), media.rate, library.*, admin.*: not a player state.
        _ => None,
    };
    let title = match (
        text(body, "/Metadata/grandparentTitle"),
        text(body, "/Metadata/title"),
    ) {
        (Some(artist), Some(t)) => Some(format!("{artist} – {t}")),
        (None, t) => t,
        (a, None) => a,
    };
    if state.is_none() {
        return Ok(Notification::ignored(
            event,
            received.trunc_subsecs(0),
            title,
        ));
    }
    Ok(Notification {
        state,
        // Plex sends no time: the arrival, to the second.
        time: received.trunc_subsecs(0),
        user: text(body, "/Account/id").map_or_else(|| required(body, "/Account/title"), Ok)?,
        device: required(body, "/Player/uuid")?,
        address: address(body, "/Player/publicAddress"),
        item: required(body, "/Metadata/ratingKey")?,
        title,
        duration_s: number(body, "/Metadata/duration").map(|ms| ms / 1000.0),
        event,
    })
}

/// Emby's webhooks (JSON, or the `data` field of a form).
fn emby(body: &Value, received: DateTime<Utc>) -> Result<Notification, FieldError> {
    let event = required(body, "/Event")?;
    let state = match event.as_str() {
        "playback.start" | "playback.unpause" => Some(State::Playing),
        "playback.pause" => Some(State::Paused),
        "playback.stop" => Some(State::Stopped),
        _ => None,
    };
    let time = time_of(body, &["/Date"], received)?;
    if state.is_none() {
        return Ok(Notification::ignored(event, time, text(body, "/Title")));
    }
    Ok(Notification {
        state,
        time,
        user: required(body, "/User/Id")?,
        device: required(body, "/Session/DeviceId")?,
        address: address(body, "/Session/RemoteEndPoint"),
        item: required(body, "/Item/Id")?,
        title: text(body, "/Item/Name"),
        duration_s: number(body, "/Item/RunTimeTicks").map(ticks_s),
        event,
    })
}

impl Notification {
    /// An event that is not about playing: it carries no player or account worth requiring.
    fn ignored(event: String, time: DateTime<Utc>, title: Option<String>) -> Notification {
        Notification {
            event,
            state: None,
            time,
            user: String::new(),
            device: String::new(),
            address: None,
            item: String::new(),
            title,
            duration_s: None,
        }
    }

    /// The trusted player event it becomes (None when it reports no player state), in the
    /// shape `ingest::player::check_batch` checks: identities namespaced by server, the device
    /// keyed by its address (else `fallback`, the server's) and the server's device id.
    pub fn player_event(&self, server: Server, fallback: IpAddr) -> Option<Value> {
        let state = self.state?;
        let s = server.as_str();
        let mut event = json!({
            "time": self.time.to_rfc3339(),
            "state": state.as_str(),
            "objKey": format!("{s}:{}", self.item),
            "source": "on-demand",
            "user_identity": format!("{s}.user:{}", self.user),
            "device_key": device_key(&self.address.unwrap_or(fallback), &format!("{s}:{}", self.device)),
        });
        if let Some(d) = self.duration_s {
            event["duration"] = json!(d);
        }
        Some(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn plex_events_map_to_player_states_and_take_the_arrival_second() {
        let body = json!({
            "event": "media.pause", "user": true, "owner": true,
            "Account": {"id": 1, "title": "elan"},
            "Server": {"title": "Office", "uuid": "54664a3d"},
            "Player": {"local": false, "publicAddress": "200.200.200.200", "title": "Plexamp", "uuid": "r6yfkdnfggbh2bdnvkffwbms"},
            "Metadata": {"type": "track", "ratingKey": "1936545", "title": "Blue Monday", "grandparentTitle": "New Order", "duration": 446000}
        });
        let n = parse(Server::Plex, &body, at("2026-12-05T20:00:00.750Z")).unwrap();
        assert_eq!(n.state, Some(State::Paused));
        assert_eq!(n.time, at("2026-12-05T20:00:00Z"));
        assert_eq!((n.user.as_str(), n.item.as_str()), ("1", "1936545"));
        assert_eq!(n.duration_s, Some(446.0));
        assert_eq!(n.title.as_deref(), Some("New Order – Blue Monday"));
        let e = n
            .player_event(Server::Plex, "10.0.0.1".parse().unwrap())
            .unwrap();
        assert_eq!(e["objKey"], "plex:1936545");
        assert_eq!(e["user_identity"], "plex.user:1");
        assert_eq!(
            e["device_key"],
            device_key(
                &"200.200.200.200".parse().unwrap(),
                "plex:r6yfkdnfggbh2bdnvkffwbms"
            )
        );
        let scrobble = parse(
            Server::Plex,
            &json!({"event": "media.scrobble"}),
            Utc::now(),
        )
        .unwrap();
        assert_eq!(
            scrobble.player_event(Server::Plex, "10.0.0.1".parse().unwrap()),
            None
        );
        let e = parse(
            Server::Plex,
            &json!({"event": "media.play", "Account": {"title": "x"}}),
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.message.as_str()),
            ("Player.uuid", "is missing")
        );
    }

    #[test]
    fn jellyfin_and_emby_times_and_ticks_are_theirs() {
        let jf = json!({
            "NotificationType": "PlaybackProgress", "UtcTimestamp": "2026-12-05T20:01:02.1234567Z",
            "UserId": "6b1f0c", "DeviceId": "TW96aWxsYQ", "ItemId": "a1b2", "Name": "Song",
            "RunTimeTicks": "2400000000", "PlaybackPositionTicks": 100, "IsPaused": true
        });
        let n = parse(Server::Jellyfin, &jf, Utc::now()).unwrap();
        assert_eq!(n.state, Some(State::Paused));
        assert_eq!(n.duration_s, Some(240.0));
        assert_eq!(n.time, at("2026-12-05T20:01:02.1234567Z"));
        let emby = json!({
            "Event": "playback.unpause", "Date": "2026-12-05T20:05:00.0000000Z",
            "User": {"Name": "ann", "Id": "u9"}, "Item": {"Name": "Song", "Id": "77", "RunTimeTicks": 1800000000i64},
            "Session": {"RemoteEndPoint": "192.0.2.7", "DeviceId": "d1", "Client": "Emby Web"}
        });
        let n = parse(Server::Emby, &emby, Utc::now()).unwrap();
        assert_eq!((n.state, n.duration_s), (Some(State::Playing), Some(180.0)));
        assert_eq!(n.address, Some("192.0.2.7".parse().unwrap()));
        let e = parse(
            Server::Emby,
            &json!({"Event": "playback.start", "Date": "yesterday"}),
            Utc::now(),
        )
        .unwrap_err();
        assert_eq!(e.field, "Date");
        assert!(e.message.starts_with("is not an RFC 3339 time"), "{e:?}");
        assert_eq!(
            parse(Server::Jellyfin, &json!([1]), Utc::now()).unwrap_err(),
            FieldError::new("body", "must be a JSON object")
        );
    }
}
