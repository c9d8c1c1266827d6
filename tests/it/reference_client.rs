//! The openbroadcast client code from `../shared/reference/openbroadcast-stats-notes.md`, run
//! with Python against airlog with only the host and the token changed.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use airlog::auth::Scope;

use crate::helpers::TestApp;

fn notes_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/reference/openbroadcast-stats-notes.md")
}

/// The first ```python block after `heading`.
fn python_block(notes: &str, heading: &str) -> String {
    let section = &notes[notes
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} missing"))..];
    let start = section.find("```python").expect("python block") + "```python".len();
    let end = section[start..].find("```").expect("block end");
    section[start..start + end].to_string()
}

/// A Python 3 with `requests` (the Debian one gets it from `make deps`).
fn python() -> String {
    for candidate in ["python3", "/usr/bin/python3"] {
        let ok = Command::new(candidate)
            .args(["-c", "import requests"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return candidate.to_string();
        }
    }
    panic!("no python3 with the requests module: run `make deps` (installs python3-requests)");
}

fn run_python(script: String) -> String {
    let mut child = Command::new(python())
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[tokio::test]
async fn reference_python_clients_work_unchanged_but_for_host_and_token() {
    let Ok(notes) = std::fs::read_to_string(notes_path()) else {
        eprintln!(
            "skipped: {} is not beside this checkout",
            notes_path().display()
        );
        return;
    };
    let app = TestApp::spawn().await;
    let ingest = app.token(&[Scope::Ingest]);
    let read = app.token(&[Scope::Read]);

    let post = python_block(&notes, "## Stream Event Ingest")
        .replace("http://localhost:8080", &app.address)
        .replace("9986ab9b46ee7f5501f554a80b5725337c2c56a6", &ingest);
    let out = tokio::task::spawn_blocking({
        let post = post.clone();
        move || run_python(post)
    })
    .await
    .unwrap();
    assert_eq!(out.trim(), r#"201 {"created":1,"duplicates":0}"#);

    let walk = python_block(&notes, "## Stream Event API")
        .replace("https://openbroadcast.ch", &app.address)
        .replace("AQIBWEJUHAPUIDFRHPDXPJNU48", &read);
    let out = tokio::task::spawn_blocking(move || run_python(walk))
        .await
        .unwrap();
    assert!(out.contains("loaded 1 events"), "{out}");

    let out = tokio::task::spawn_blocking(move || run_python(post))
        .await
        .unwrap();
    assert_eq!(
        out.trim(),
        r#"201 {"created":0,"duplicates":1}"#,
        "a re-post is a duplicate"
    );
    app.stop().await;
}
