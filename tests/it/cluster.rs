use airlog::db::cluster::{Cluster, ClusterState, Started};
use diesel::connection::SimpleConnection;
use diesel::{Connection, PgConnection, RunQueryDsl};

use crate::helpers::{airlog_cmd, private_temp_dir, FAST_CONF};

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
