use airlog::db::cluster::{Cluster, ClusterState, Started};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::helpers::{
    airlog_cmd, free_port, private_temp_dir, station_row, wait_healthy, FAST_CONF,
};

fn count_rows(url: &str) -> i64 {
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::dsl::select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
        "count(*) FROM kept",
    ))
    .get_result(&mut conn)
    .unwrap()
}

#[test]
fn private_cluster_starts_is_reused_and_survives_stale_pid_files() {
    let dir = private_temp_dir("airlog-cluster");
    let cluster = Cluster::new(dir.join("pg"))
        .unwrap()
        .with_extra_conf(FAST_CONF);
    assert_eq!(cluster.status(), ClusterState::Absent);

    assert_eq!(cluster.start().unwrap(), Started::ByUs);
    let pid = match cluster.status() {
        ClusterState::Running { pid } => pid,
        other => panic!("expected running, got {other:?}"),
    };
    let mut conn = PgConnection::establish(&cluster.url()).unwrap();
    conn.batch_execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (1)")
        .unwrap();
    drop(conn);

    // A second process on the same data directory reuses the running server.
    let again = Cluster::new(dir.join("pg")).unwrap();
    assert_eq!(again.start().unwrap(), Started::AlreadyRunning);
    assert_eq!(again.status(), ClusterState::Running { pid });

    cluster.stop().unwrap();
    assert_eq!(cluster.status(), ClusterState::Stopped);

    // A crash: the postmaster dies and its pid file stays behind.
    assert_eq!(cluster.start().unwrap(), Started::ByUs);
    let ClusterState::Running { pid } = cluster.status() else {
        panic!("not running")
    };
    unsafe { libc::kill(pid, libc::SIGKILL) };
    while std::path::Path::new(&format!("/proc/{pid}")).exists() {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(cluster.status(), ClusterState::Stale { pid });
    assert_eq!(cluster.start().unwrap(), Started::ByUs);
    assert_eq!(count_rows(&cluster.url()), 1);
    cluster.stop().unwrap();

    // After a reboot the old pid may belong to a live, unrelated process (here: this test).
    let pid_file = dir.join("pg/data/postmaster.pid");
    let fake = format!(
        "{}\n{}\n",
        std::process::id(),
        dir.join("pg/data").display()
    );
    std::fs::write(&pid_file, fake).unwrap();
    assert!(matches!(cluster.status(), ClusterState::Stale { .. }));
    assert_eq!(cluster.start().unwrap(), Started::ByUs);
    assert_eq!(count_rows(&cluster.url()), 1, "data survives every restart");
    cluster.stop().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn db_commands_manage_the_cluster_by_hand() {
    let dir = private_temp_dir("airlog-dbcli");
    let data = dir.join("var");
    let data = data.to_str().unwrap();

    let (code, stdout, _) = airlog_cmd(&["--data-dir", data, "db", "status"], &[], &dir);
    assert_eq!(code, 0);
    assert!(stdout.starts_with("no cluster yet"), "{stdout}");

    let (code, stdout, stderr) = airlog_cmd(&["--data-dir", data, "db", "start"], &[], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("psql"), "{stdout}");

    let (_, url, _) = airlog_cmd(&["--data-dir", data, "db", "url"], &[], &dir);
    let mut conn = PgConnection::establish(url.trim()).unwrap();
    diesel::sql_query("SELECT 1").execute(&mut conn).unwrap();
    drop(conn);

    // `migrate` on a running cluster leaves it running (it did not start it).
    let (code, stdout, stderr) = airlog_cmd(&["--data-dir", data, "migrate"], &[], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("applied"), "{stdout}");
    let (_, stdout, _) = airlog_cmd(&["--data-dir", data, "db", "status"], &[], &dir);
    assert!(stdout.starts_with("running"), "{stdout}");

    let (code, _, _) = airlog_cmd(&["--data-dir", data, "db", "stop"], &[], &dir);
    assert_eq!(code, 0);
    let (_, stdout, _) = airlog_cmd(&["--data-dir", data, "db", "status"], &[], &dir);
    assert!(stdout.starts_with("stopped"), "{stdout}");

    // `migrate` on a stopped cluster starts it for the command and stops it again.
    let (code, stdout, stderr) = airlog_cmd(&["--data-dir", data, "migrate"], &[], &dir);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("up to date"), "{stdout}");
    let (_, stdout, _) = airlog_cmd(&["--data-dir", data, "db", "status"], &[], &dir);
    assert!(stdout.starts_with("stopped"), "{stdout}");
    let _ = std::fs::remove_dir_all(dir);
}

fn serve(data: &str, dir: &std::path::Path, bind: &str) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_airlog"))
        .args(["--data-dir", data, "serve", "--bind", bind])
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .env("AIRLOG_JOBS__ENABLED", "false")
        // The shipped Liquidsoap script's own variable: not an airlog setting, not refused.
        .env("AIRLOG_LIQ_SOCKET", "/run/airlog/liquidsoap.sock")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

fn status(data: &str, dir: &std::path::Path) -> String {
    airlog_cmd(&["--data-dir", data, "db", "status"], &[], dir).1
}

/// Plays logged after `after`.
fn plays_after(url: &str, after: chrono::DateTime<chrono::Utc>) -> i64 {
    let mut conn = PgConnection::establish(url).unwrap();
    diesel::sql_query("SELECT count(*) AS n FROM onair_log WHERE type = 'on_air' AND date > $1")
        .bind::<diesel::sql_types::Timestamptz, _>(after)
        .get_result::<Count>(&mut conn)
        .unwrap()
        .n
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn wait_plays(url: &str, after: chrono::DateTime<chrono::Utc>, what: &str) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(45);
    while plays_after(url, after) == 0 {
        assert!(std::time::Instant::now() < until, "{what}");
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

fn assert_serving(bind: &str, what: &str) {
    for _ in 0..5 {
        assert!(
            wait_healthy(bind, std::time::Duration::from_secs(2)),
            "{what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
}

#[test]
fn the_private_cluster_stays_up_while_any_airlog_uses_it_and_the_last_one_out_stops_it() {
    let dir = private_temp_dir("airlog-takeover");
    let data_path = dir.join("var");
    let data = data_path.to_str().unwrap();
    let files: Vec<std::path::PathBuf> = (0..3)
        .map(|i| crate::helpers::tone(&dir, &format!("t{i}"), 2))
        .collect();
    let refs: Vec<&std::path::Path> = files.iter().map(|p| p.as_path()).collect();
    let ls = crate::liquidsoap::Liquidsoap::start(&dir, &refs);
    let long = std::time::Duration::from_secs(60);

    // Round 1: the first airlog starts the cluster, a second joins, the first stops.
    let (bind_a, bind_b) = (
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    );
    let mut a = serve(data, &dir, &bind_a);
    assert!(wait_healthy(&bind_a, long), "the first airlog serves");
    let url = airlog_cmd(&["--data-dir", data, "db", "url"], &[], &dir).1;
    let url = url.trim().to_string();
    let mut conn = PgConnection::establish(&url).unwrap();
    airlog::db::playout::upsert_station(
        &mut conn,
        &station_row("main", "liquidsoap", ls.socket.display().to_string()),
    )
    .unwrap();
    drop(conn);
    let mut b = serve(data, &dir, &bind_b);
    assert!(wait_healthy(&bind_b, long), "the second airlog serves");
    wait_plays(
        &url,
        chrono::Utc::now() - chrono::Duration::hours(1),
        "the first airlog logs plays",
    );

    unsafe { libc::kill(a.id() as i32, libc::SIGTERM) };
    assert!(a.wait().unwrap().success());
    let left = chrono::Utc::now();
    assert!(
        status(data, &dir).starts_with("running"),
        "still used by the second airlog"
    );
    assert_serving(&bind_b, "the second airlog keeps serving");
    wait_plays(
        &url,
        left + chrono::Duration::seconds(1),
        "the second airlog took over the station",
    );
    unsafe { libc::kill(b.id() as i32, libc::SIGTERM) };
    assert!(b.wait().unwrap().success());
    assert!(
        status(data, &dir).starts_with("stopped"),
        "the last one out stopped it: {}",
        status(data, &dir)
    );

    // Round 2: the starter is killed (-9); the other adopts the cluster and stops it later.
    let mut a = serve(data, &dir, &bind_a);
    assert!(wait_healthy(&bind_a, long));
    let mut b = serve(data, &dir, &bind_b);
    assert!(wait_healthy(&bind_b, long));
    unsafe { libc::kill(a.id() as i32, libc::SIGKILL) };
    a.wait().unwrap();
    let killed = chrono::Utc::now();
    assert_serving(&bind_b, "the survivor keeps serving");
    wait_plays(
        &url,
        killed + chrono::Duration::seconds(1),
        "the survivor logs plays",
    );
    unsafe { libc::kill(b.id() as i32, libc::SIGTERM) };
    assert!(b.wait().unwrap().success());
    let after = status(data, &dir);
    assert!(
        after.starts_with("stopped"),
        "stopped cleanly, not left behind: {after}"
    );
    // A clean stop leaves no postmaster.pid: the next start is not a crash recovery.
    assert!(!data_path.join("pg/data/postmaster.pid").exists());
    drop(ls);
    let _ = std::fs::remove_dir_all(dir);
}
