//! The admin API over real TLS: admins manage users and their grants, everybody manages their
//! own API tokens, agents get `403` on every user and grant route, and the box never loses its
//! last active admin.

mod support;

use serde_json::{Value, json};
use support::server::*;

async fn login_status(s: &TestServer, name: &str, password: &str) -> u16 {
    s.client()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_admin_creates_changes_and_deletes_users_and_their_grants() {
    let (s, a, b) = workspace().await;
    let root = s.token("root").await;

    let (st, list) = request(&s, "GET", &root, "/api/v1/users", None).await;
    assert_eq!(st, 200);
    assert_eq!(names(&list), ["root", "alice", "nobody"]);
    assert!(!list.to_string().contains("argon2"), "no password hashes: {list}");

    // Create an agent with one grant; it logs in and sees only that account.
    let (st, bob) = request(
        &s,
        "POST",
        &root,
        "/api/v1/users",
        Some(json!({"name": "bob", "role": "agent", "password": PASSWORD, "accounts": [a]})),
    )
    .await;
    assert_eq!(st, 201, "{bob}");
    assert_eq!(bob["role"], "agent");
    assert_eq!(bob["accounts"], json!([a]));
    assert_eq!(bob["disabled"], false);
    let id = bob["id"].as_u64().unwrap();
    let bob_token = s.token("bob").await;
    let (_, me) = get(&s, &bob_token, "/api/v1/me").await;
    assert_eq!(me["accounts"], json!([a]));

    // Refusals with their codes.
    for (body, status, code) in [
        (
            json!({"name": "bob", "role": "agent", "password": PASSWORD}),
            409,
            "conflict",
        ),
        (
            json!({"name": "Bad Name", "role": "agent", "password": PASSWORD}),
            400,
            "bad_request",
        ),
        (
            json!({"name": "carol", "role": "agent", "password": "short"}),
            400,
            "bad_request",
        ),
        (
            json!({"name": "carol", "role": "owner", "password": PASSWORD}),
            400,
            "bad_request",
        ),
        (
            json!({"name": "carol", "role": "agent", "password": PASSWORD, "accounts": [999]}),
            400,
            "unknown_account",
        ),
        (json!({"name": "carol", "role": "agent"}), 400, "bad_request"),
    ] {
        let (st, v) = request(&s, "POST", &root, "/api/v1/users", Some(body.clone())).await;
        assert_eq!(
            (st, v["error"]["code"].as_str().unwrap()),
            (status, code),
            "{body}"
        );
    }

    // Grants: read, replace (unknown accounts refused, the old grants kept), and they apply.
    let path = format!("/api/v1/users/{id}/grants");
    assert_eq!(
        request(&s, "GET", &root, &path, None).await,
        (200, json!({"accounts": [a]}))
    );
    let (st, v) = request(&s, "PUT", &root, &path, Some(json!({"accounts": [b, a, b]}))).await;
    assert_eq!((st, v), (200, json!({"accounts": [a, b]})));
    let (st, v) = request(&s, "PUT", &root, &path, Some(json!({"accounts": [a, 999]}))).await;
    assert_eq!((st, &v["error"]["code"]), (400, &json!("unknown_account")));
    let (_, me) = get(&s, &bob_token, "/api/v1/me").await;
    assert_eq!(me["accounts"], json!([a, b]));

    // Role change: an admin sees every account.
    let user = format!("/api/v1/users/{id}");
    let (st, v) = request(&s, "PATCH", &root, &user, Some(json!({"role": "admin"}))).await;
    assert_eq!((st, &v["role"]), (200, &json!("admin")));
    let (_, me) = get(&s, &bob_token, "/api/v1/me").await;
    assert_eq!(me["role"], "admin");
    let (st, _) = request(&s, "PATCH", &root, &user, Some(json!({"rank": 1}))).await;
    assert_eq!(st, 400);

    // Disabled: its credentials stop working; enabled again, they work.
    let (st, v) = request(&s, "PATCH", &root, &user, Some(json!({"disabled": true}))).await;
    assert_eq!((st, &v["disabled"]), (200, &json!(true)));
    assert_eq!(get(&s, &bob_token, "/api/v1/me").await.0, 401);
    assert_eq!(login_status(&s, "bob", PASSWORD).await, 400);
    request(&s, "PATCH", &root, &user, Some(json!({"disabled": false}))).await;
    assert_eq!(get(&s, &bob_token, "/api/v1/me").await.0, 200);

    // Password reset: the old one stops, the new one works, sessions end, tokens go on.
    let cookie = s.login("bob").await;
    let new_pw = "a new and long password";
    let (st, _) = request(
        &s,
        "POST",
        &root,
        &format!("{user}/password"),
        Some(json!({"password": new_pw})),
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(login_status(&s, "bob", PASSWORD).await, 400);
    assert_eq!(login_status(&s, "bob", new_pw).await, 200);
    let old_session = s
        .client()
        .get(s.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(old_session.status(), 401);
    assert_eq!(get(&s, &bob_token, "/api/v1/me").await.0, 200);
    let (st, _) = request(
        &s,
        "POST",
        &root,
        &format!("{user}/password"),
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(st, 400);

    // Delete: gone with its tokens; the name is free again.
    assert_eq!(request(&s, "DELETE", &root, &user, None).await.0, 204);
    assert_eq!(request(&s, "GET", &root, &user, None).await.0, 404);
    assert_eq!(request(&s, "DELETE", &root, &user, None).await.0, 404);
    assert_eq!(get(&s, &bob_token, "/api/v1/me").await.0, 401);
    let (_, list) = request(&s, "GET", &root, "/api/v1/users", None).await;
    assert_eq!(names(&list), ["root", "alice", "nobody"]);
    let (st, _) = request(
        &s,
        "POST",
        &root,
        "/api/v1/users",
        Some(json!({"name": "bob", "role": "admin", "password": PASSWORD})),
    )
    .await;
    assert_eq!(st, 201);
    for path in ["/api/v1/users/999", "/api/v1/users/x", "/api/v1/users/999/grants"] {
        assert_eq!(request(&s, "GET", &root, path, None).await.0, 404, "{path}");
    }
}

#[tokio::test]
async fn the_last_active_admin_cannot_be_demoted_disabled_or_deleted() {
    let (s, _, _) = workspace().await;
    let root = s.token("root").await;
    let (_, list) = request(&s, "GET", &root, "/api/v1/users", None).await;
    let root_id = list[0]["id"].as_u64().unwrap();
    let me = format!("/api/v1/users/{root_id}");
    for body in [json!({"role": "agent"}), json!({"disabled": true})] {
        let (st, v) = request(&s, "PATCH", &root, &me, Some(body)).await;
        assert_eq!((st, &v["error"]["code"]), (409, &json!("conflict")));
    }
    assert_eq!(request(&s, "DELETE", &root, &me, None).await.0, 409);
    assert_eq!(get(&s, &root, "/api/v1/me").await.0, 200);

    // With a second admin, the first may step down.
    let (st, second) = request(
        &s,
        "POST",
        &root,
        "/api/v1/users",
        Some(json!({"name": "second", "role": "admin", "password": PASSWORD})),
    )
    .await;
    assert_eq!(st, 201);
    let (st, v) = request(&s, "PATCH", &root, &me, Some(json!({"role": "agent"}))).await;
    assert_eq!((st, &v["role"]), (200, &json!("agent")));
    // Now root is an agent: the admin routes are closed to it.
    assert_eq!(request(&s, "GET", &root, "/api/v1/users", None).await.0, 403);
    let second_token = s.token("second").await;
    let path = format!("/api/v1/users/{}", second["id"]);
    assert_eq!(request(&s, "DELETE", &second_token, &path, None).await.0, 409);
}

/// Every user and grant route answers an agent `403` (and an anonymous caller `401`), whatever
/// the body, and changes nothing.
#[tokio::test]
async fn an_agent_gets_403_on_every_user_and_grant_route() {
    let (s, a, _) = workspace().await;
    let alice = s.token("alice").await;
    let root = s.token("root").await;
    let (_, before) = request(&s, "GET", &root, "/api/v1/users", None).await;
    let alice_id = before[1]["id"].as_u64().unwrap();
    let root_id = before[0]["id"].as_u64().unwrap();
    let body = json!({"name": "mallory", "role": "admin", "password": PASSWORD});
    let routes: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/api/v1/users".into(), None),
        ("POST", "/api/v1/users".into(), Some(body)),
        ("POST", "/api/v1/users".into(), Some(json!({"bad": 1}))),
        ("GET", format!("/api/v1/users/{root_id}"), None),
        (
            "PATCH",
            format!("/api/v1/users/{alice_id}"),
            Some(json!({"role": "admin"})),
        ),
        (
            "PATCH",
            format!("/api/v1/users/{root_id}"),
            Some(json!({"disabled": true})),
        ),
        ("DELETE", format!("/api/v1/users/{root_id}"), None),
        (
            "POST",
            format!("/api/v1/users/{root_id}/password"),
            Some(json!({"password": "taken over by alice"})),
        ),
        ("GET", format!("/api/v1/users/{alice_id}/grants"), None),
        (
            "PUT",
            format!("/api/v1/users/{alice_id}/grants"),
            Some(json!({"accounts": [a, 2]})),
        ),
        ("GET", "/api/v1/users/999".into(), None),
    ];
    for (method, path, body) in &routes {
        let (st, v) = request(&s, method, &alice, path, body.clone()).await;
        assert_eq!(
            (st, &v["error"]["code"]),
            (403, &json!("forbidden")),
            "{method} {path}"
        );
        let res = s
            .client()
            .request(method.parse().unwrap(), s.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "anonymous {method} {path}");
    }
    // An agent's session cookie fares no better than its token.
    let cookie = s.login("alice").await;
    let res = s
        .client()
        .get(s.url("/api/v1/users"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (_, after) = request(&s, "GET", &root, "/api/v1/users", None).await;
    assert_eq!(before, after, "nothing changed");
    assert_eq!(login_status(&s, "root", PASSWORD).await, 200);
}

#[tokio::test]
async fn everybody_manages_their_own_tokens_only() {
    let (s, _, _) = workspace().await;
    let alice = s.token("alice").await;
    let root = s.token("root").await;

    let (st, created) = request(
        &s,
        "POST",
        &alice,
        "/api/v1/tokens",
        Some(json!({"label": "crm sync", "expires_in_days": 30})),
    )
    .await;
    assert_eq!(st, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    assert!(token.starts_with("lbx_"));
    assert!(token.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["label"], "crm sync");
    let in_30d = created["created_at"].as_i64().unwrap() + 30 * 86_400;
    assert!((created["expires_at"].as_i64().unwrap() - in_30d).abs() < 5);
    let id = created["id"].as_str().unwrap().to_string();

    // The new token acts as alice; listings never show a token's value.
    let (_, me) = get(&s, &token, "/api/v1/me").await;
    assert_eq!(me["name"], "alice");
    let (st, list) = request(&s, "GET", &alice, "/api/v1/tokens", None).await;
    assert_eq!(st, 200);
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert!(list.as_array().unwrap().iter().any(|t| t["id"] == json!(id)));
    assert!(!list.to_string().contains(&token) && !list.to_string().contains(&alice));
    let (_, roots) = request(&s, "GET", &root, "/api/v1/tokens", None).await;
    assert!(!roots.to_string().contains(&id), "{roots}");

    // Nobody revokes someone else's token, admins included.
    let path = format!("/api/v1/tokens/{id}");
    assert_eq!(request(&s, "DELETE", &root, &path, None).await.0, 404);
    assert_eq!(get(&s, &token, "/api/v1/me").await.0, 200);
    assert_eq!(request(&s, "DELETE", &alice, &path, None).await.0, 204);
    assert_eq!(get(&s, &token, "/api/v1/me").await.0, 401);
    assert_eq!(request(&s, "DELETE", &alice, &path, None).await.0, 404);
    assert_eq!(
        request(&s, "DELETE", &alice, "/api/v1/tokens/not-an-id", None)
            .await
            .0,
        404
    );

    for body in [
        json!({"expires_in_days": 0}),
        json!({"expires_in_days": 100000}),
        json!({"label": "x".repeat(101)}),
        json!({"owner": "root"}),
    ] {
        let (st, _) = request(&s, "POST", &alice, "/api/v1/tokens", Some(body.clone())).await;
        assert_eq!(st, 400, "{body}");
    }
    let (st, v) = request(&s, "POST", &alice, "/api/v1/tokens", Some(json!({}))).await;
    assert_eq!((st, &v["expires_at"]), (201, &Value::Null));
}
