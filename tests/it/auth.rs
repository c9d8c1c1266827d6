use airlog::auth::Scope;
use reqwest::Method;

use crate::helpers::{airlog_cmd, json_of, private_temp_dir, TestApp};

#[tokio::test]
async fn endpoints_need_a_token_and_the_right_scope() {
    let app = TestApp::spawn().await;
    let url = "/api/v1/tokens/";

    let (status, body) = json_of(app.request(Method::GET, url, None)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized");

    let wrong = "0000000000000000000000000000000000000000";
    assert_eq!(app.get_json(url, wrong).await.0, 401);

    let read = app.token(&[Scope::Read, Scope::Ingest]);
    let (status, body) = app.get_json(url, &read).await;
    assert_eq!(status, 403);
    assert!(
        body["message"].as_str().unwrap().contains("admin"),
        "{body}"
    );

    let admin = app.admin_token();
    for scheme in ["Token", "Bearer"] {
        let (status, body) = json_of(
            app.request(Method::GET, url, None)
                .header("Authorization", format!("{scheme} {admin}")),
        )
        .await;
        assert_eq!(status, 200, "{scheme}");
        let listed = body["results"].as_array().unwrap();
        assert_eq!(listed.len(), 2);
        assert!(
            listed.iter().all(|t| t.get("hash").is_none()),
            "hashes are never listed: {body}"
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn token_cli_creates_lists_and_revokes_hashed_tokens() {
    let app = TestApp::spawn().await;
    let dir = private_temp_dir("airlog-token-cli");
    let env = [("DATABASE_URL", app.db.url.as_str())];

    let (code, stdout, stderr) = airlog_cmd(
        &["token", "create", "--name", "shipper", "--scope", "admin"],
        &env,
        &dir,
    );
    assert_eq!(code, 0, "{stderr}");
    let secret = stdout.trim().to_string();
    assert_eq!(secret.len(), 40, "{stdout}");

    use diesel::prelude::*;
    let stored: Vec<String> = airlog::db::schema::api_token::table
        .select(airlog::db::schema::api_token::hash)
        .load(&mut app.db.conn())
        .unwrap();
    assert_eq!(stored, vec![airlog::auth::hash_token(&secret)]);
    assert!(!stored[0].contains(&secret));

    let (code, _, stderr) = airlog_cmd(
        &["token", "create", "--name", "shipper", "--scope", "read"],
        &env,
        &dir,
    );
    assert_eq!(code, 1);
    assert!(
        stderr.contains("an active token named \"shipper\" exists"),
        "{stderr}"
    );

    let (code, stdout, _) = airlog_cmd(&["token", "list"], &env, &dir);
    assert_eq!(code, 0);
    assert!(
        stdout.contains("shipper") && stdout.contains(&secret[..8]) && !stdout.contains(&secret)
    );

    let url = "/api/v1/tokens/";
    assert_eq!(app.get_json(url, &secret).await.0, 200);

    let (code, _, stderr) = airlog_cmd(&["token", "revoke", "shipper"], &env, &dir);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(app.get_json(url, &secret).await.0, 401);

    let (code, _, stderr) = airlog_cmd(&["token", "revoke", "shipper"], &env, &dir);
    assert_eq!(code, 1);
    assert!(stderr.contains("no active token named"), "{stderr}");
    app.stop().await;
}
