use std::time::Duration;

use crate::helpers::{airlog_cmd, free_port, private_temp_dir, wait_healthy, write_file, TestDb};

/// Asserts a failed run printed exactly one line, containing every `needle`.
fn assert_one_line_error(code: i32, stderr: &str, needles: &[&str]) {
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(
        stderr.trim().lines().count(),
        1,
        "one line expected: {stderr}"
    );
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} missing from: {stderr}");
    }
}

#[test]
fn unknown_config_key_is_named() {
    let dir = private_temp_dir("airlog-config");
    let file = write_file(
        &dir,
        "airlog.toml",
        "[server]\nbind = \"127.0.0.1:0\"\nbindd = \"oops\"\n",
    );
    let (code, _, stderr) = airlog_cmd(&["--config", file.to_str().unwrap(), "serve"], &[], &dir);
    assert_one_line_error(code, &stderr, &["bindd", "server"]);
}

#[test]
fn bad_time_zone_from_the_environment_is_named() {
    let dir = private_temp_dir("airlog-config");
    let (code, _, stderr) = airlog_cmd(
        &["serve"],
        &[("AIRLOG_STATION__TIME_ZONE", "Europe/Zurch")],
        &dir,
    );
    assert_one_line_error(code, &stderr, &["Europe/Zurch", "time_zone"]);
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = private_temp_dir("airlog-config");
    let (code, _, stderr) = airlog_cmd(
        &["--config", "/nonexistent/airlog.toml", "serve"],
        &[],
        &dir,
    );
    assert_one_line_error(
        code,
        &stderr,
        &["/nonexistent/airlog.toml", "does not exist"],
    );
}

#[test]
fn default_config_file_in_the_working_directory_is_read() {
    let dir = private_temp_dir("airlog-config");
    write_file(&dir, "airlog.toml", "[station]\nday_start_hour = 25\n");
    let (code, _, stderr) = airlog_cmd(&["serve"], &[], &dir);
    assert_one_line_error(code, &stderr, &["day_start_hour", "25"]);
}

#[test]
fn port_in_use_is_reported() {
    let db = TestDb::new();
    let dir = private_temp_dir("airlog-config");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bind = taken.local_addr().unwrap().to_string();
    let (code, _, stderr) = airlog_cmd(
        &["serve", "--bind", &bind],
        &[("DATABASE_URL", &db.url)],
        &dir,
    );
    assert_one_line_error(code, &stderr, &["cannot listen on", &bind, "in use"]);
}

#[test]
fn unusable_data_directory_is_reported() {
    let dir = private_temp_dir("airlog-config");
    let file = write_file(&dir, "not-a-dir", "");
    let data = file.join("var");
    let (code, _, stderr) = airlog_cmd(&["--data-dir", data.to_str().unwrap(), "serve"], &[], &dir);
    assert_one_line_error(code, &stderr, &["data directory", "cannot be created"]);
}

#[test]
fn serve_on_the_embedded_default_stops_cleanly_and_keeps_data() {
    let dir = private_temp_dir("airlog-serve");
    let data = dir.join("var");
    let data = data.to_str().unwrap();
    for round in 0..2 {
        let port = free_port();
        let bind = format!("127.0.0.1:{port}");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_airlog"))
            .args(["--data-dir", data, "serve", "--bind", &bind])
            .current_dir(&dir)
            .env_remove("DATABASE_URL")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        assert!(
            wait_healthy(&bind, Duration::from_secs(60)),
            "round {round}"
        );
        if round == 0 {
            // Created while the server runs, through the shared cluster.
            let (code, _, stderr) = airlog_cmd(
                &[
                    "--data-dir",
                    data,
                    "token",
                    "create",
                    "--name",
                    "kept",
                    "--scope",
                    "read",
                ],
                &[],
                &dir,
            );
            assert_eq!(code, 0, "{stderr}");
        } else {
            let (_, stdout, _) = airlog_cmd(&["--data-dir", data, "token", "list"], &[], &dir);
            assert!(
                stdout.contains("kept"),
                "data kept across restarts: {stdout}"
            );
        }
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let status = child.wait().unwrap();
        assert!(status.success(), "round {round}: {status}");
        let (_, stdout, _) = airlog_cmd(&["--data-dir", data, "db", "status"], &[], &dir);
        assert!(
            stdout.starts_with("stopped"),
            "the private cluster stops with the server: {stdout}"
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
