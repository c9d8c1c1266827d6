//! The mpv IPC client against a real headless mpv.

use std::time::Duration;

use airlog::monitor::mpv::client::{MpvClient, MpvError};
use airlog::monitor::mpv::protocol::Incoming;
use serde_json::{json, Value};

use crate::helpers::{private_temp_dir, start_mpv, tone};

async fn next_matching(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<airlog::monitor::mpv::client::Timed>,
    what: impl Fn(&Incoming) -> bool,
) -> Incoming {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, got) = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("event in time")
            .expect("channel open");
        if what(&got) {
            return got;
        }
    }
}

#[tokio::test]
async fn the_client_reads_properties_observes_changes_and_sees_mpv_go() {
    let dir = private_temp_dir("airlog-mpv-client");
    let audio = tone(&dir, "Tone", 3);
    let socket = dir.join("mpv.sock");
    let mut mpv = start_mpv(&socket);
    let (client, mut events) = MpvClient::connect(&socket, Duration::from_secs(2))
        .await
        .unwrap();

    assert_eq!(client.get("idle-active").await.unwrap(), Some(json!(true)));
    assert_eq!(
        client.get("duration").await.unwrap(),
        None,
        "unavailable while idle"
    );
    let err = client.get("no-such-property").await.unwrap_err();
    assert!(matches!(err, MpvError::Refused { .. }), "{err}");

    client.observe(1, "pause").await.unwrap();
    client.observe(2, "media-title").await.unwrap();
    client
        .request(&[json!("loadfile"), json!(audio.display().to_string())])
        .await
        .unwrap();
    next_matching(
        &mut events,
        |e| matches!(e, Incoming::Event { name, .. } if name == "file-loaded"),
    )
    .await;
    let title = next_matching(&mut events, |e| {
        matches!(
            e,
            Incoming::PropertyChange {
                id: 2,
                data: Some(_),
                ..
            }
        )
    })
    .await;
    assert_eq!(
        title,
        Incoming::PropertyChange {
            id: 2,
            name: "media-title".into(),
            data: Some(json!("Tone"))
        }
    );
    client
        .request(&[json!("set_property"), json!("pause"), json!(true)])
        .await
        .unwrap();
    next_matching(&mut events, |e| {
        matches!(
            e,
            Incoming::PropertyChange {
                id: 1,
                data: Some(Value::Bool(true)),
                ..
            }
        )
    })
    .await;

    // A frozen mpv: requests time out instead of hanging.
    unsafe { libc::kill(mpv.id() as i32, libc::SIGSTOP) };
    let (frozen, _events2) = MpvClient::connect(&socket, Duration::from_millis(500))
        .await
        .unwrap();
    let err = frozen.get("pause").await.unwrap_err();
    assert!(matches!(err, MpvError::Timeout(..)), "{err}");
    unsafe { libc::kill(mpv.id() as i32, libc::SIGCONT) };

    let _ = client.request(&[json!("quit")]).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the channel closes when mpv quits")
        {
            None => break,
            Some(_) => continue,
        }
    }
    mpv.wait().unwrap();
    assert!(matches!(
        client.get("pause").await.unwrap_err(),
        MpvError::Closed | MpvError::Io(_) | MpvError::Timeout(..)
    ));
}
