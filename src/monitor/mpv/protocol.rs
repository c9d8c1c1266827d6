//! mpv's JSON IPC protocol, without I/O: newline-delimited JSON both ways; replies carry the
//! `request_id` of their command, events carry `event`. mpv may send invalid UTF-8, so lines
//! are decoded lossily. Unit-tested on recorded lines.

use serde_json::{json, Map, Value};

/// One line from mpv.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to a command: `error` is "success" or mpv's reason.
    Reply {
        request_id: u64,
        error: String,
        data: Option<Value>,
    },
    /// A property observed with `observe_property` changed (`data` None: unavailable).
    PropertyChange {
        id: u64,
        name: String,
        data: Option<Value>,
    },
    /// Any other event (`start-file`, `end-file`, `seek`, `idle`, ...) with its fields.
    Event {
        name: String,
        fields: Map<String, Value>,
    },
    /// Not from mpv: the client saw the connection end (the last item of its event channel,
    /// so the time it ended is known even when the receiver is busy).
    Closed,
}

/// Parses one line (without its newline).
pub fn parse_line(line: &[u8]) -> Result<Incoming, String> {
    let text = String::from_utf8_lossy(line);
    let value: Value = serde_json::from_str(text.trim()).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut obj) = value else {
        return Err("not a JSON object".into());
    };
    if let Some(name) = obj.get("event").and_then(Value::as_str).map(str::to_string) {
        if name == "property-change" {
            let id = obj.get("id").and_then(Value::as_u64).unwrap_or(0);
            let prop = obj
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            return Ok(Incoming::PropertyChange {
                id,
                name: prop,
                data: obj.remove("data"),
            });
        }
        obj.remove("event");
        return Ok(Incoming::Event { name, fields: obj });
    }
    match obj.get("request_id").and_then(Value::as_u64) {
        Some(request_id) => Ok(Incoming::Reply {
            request_id,
            error: obj
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            data: obj.remove("data"),
        }),
        None => Err("neither a reply nor an event".into()),
    }
}

/// The line for a command.
pub fn command_line(request_id: u64, command: &[Value]) -> String {
    let mut s = json!({"command": command, "request_id": request_id}).to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_events_and_property_changes_are_told_apart() {
        assert_eq!(
            parse_line(br#"{"data":"/music/a.flac","request_id":7,"error":"success"}"#).unwrap(),
            Incoming::Reply {
                request_id: 7,
                error: "success".into(),
                data: Some(json!("/music/a.flac"))
            }
        );
        assert_eq!(
            parse_line(br#"{"request_id":8,"error":"property unavailable"}"#).unwrap(),
            Incoming::Reply {
                request_id: 8,
                error: "property unavailable".into(),
                data: None
            }
        );
        assert_eq!(
            parse_line(br#"{"event":"property-change","id":3,"name":"pause","data":true}"#)
                .unwrap(),
            Incoming::PropertyChange {
                id: 3,
                name: "pause".into(),
                data: Some(json!(true))
            }
        );
        assert_eq!(
            parse_line(br#"{"event":"property-change","id":4,"name":"duration"}"#).unwrap(),
            Incoming::PropertyChange {
                id: 4,
                name: "duration".into(),
                data: None
            }
        );
        match parse_line(br#"{"event":"end-file","reason":"eof","playlist_entry_id":1}"#).unwrap() {
            Incoming::Event { name, fields } => {
                assert_eq!(name, "end-file");
                assert_eq!(fields["reason"], "eof");
            }
            other => panic!("{other:?}"),
        }
        // Invalid UTF-8 in a title does not lose the line.
        let mut line =
            br#"{"event":"property-change","id":2,"name":"media-title","data":"caf"#.to_vec();
        line.extend_from_slice(&[0xE9, b'"', b'}']);
        assert!(matches!(
            parse_line(&line).unwrap(),
            Incoming::PropertyChange { id: 2, .. }
        ));
        assert!(parse_line(b"garbage").is_err());
        assert!(parse_line(br#"{"x":1}"#).is_err());
        assert_eq!(
            command_line(9, &[json!("get_property"), json!("path")]),
            "{\"command\":[\"get_property\",\"path\"],\"request_id\":9}\n"
        );
    }
}
