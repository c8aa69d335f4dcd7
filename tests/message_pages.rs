//! `GET /api/v1/chats/{chat}/messages` checks the credential inside its own store read (one
//! blocking hop per page, docs/benchmarks.md "REST"). These pin what the route answered when a
//! separate extractor checked the credential first: every credential rule, and 401 before
//! anything about the parameters.

mod support;

use serde_json::Value;
use support::server::*;

async fn status(s: &TestServer, token: Option<&str>, cookie: Option<&str>, path: &str) -> (u16, Value) {
    let mut r = s.client().get(s.url(path));
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let res = r.send().await.unwrap();
    let code = res.status().as_u16();
    if code == 200 {
        assert_eq!(res.headers()["content-type"], "application/json");
    }
    (code, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_page_checks_the_credential_first_and_then_the_grants() {
    let (s, a, _b) = workspace().await;
    let alice = s.token("alice").await;
    let nobody = s.token("nobody").await;
    let page = format!("/api/v1/chats/{a}:1001/messages?limit=2");

    // Without a credential, or with one that is not one, 401 whatever the request asks.
    let bad_asks = [
        page.clone(),
        format!("/api/v1/chats/{a}:1001/messages?limit=0"),
        format!("/api/v1/chats/{a}:1001/messages?before=1&after=1"),
        format!("/api/v1/chats/{a}:1001/messages?limit=lots"),
        "/api/v1/chats/nonsense/messages".to_string(),
    ];
    for path in &bad_asks {
        assert_eq!(status(&s, None, None, path).await.0, 401, "{path}");
        assert_eq!(
            status(&s, Some("lbx_not_a_token"), None, path).await.0,
            401,
            "{path}"
        );
        assert_eq!(status(&s, Some("garbage"), None, path).await.0, 401, "{path}");
        assert_eq!(
            status(&s, None, Some("__Host-lanbox_session=forged"), path)
                .await
                .0,
            401,
            "{path}"
        );
    }

    // Signed in: the parameters are judged, then the grants.
    let (code, body) = status(&s, Some(&alice), None, &page).await;
    assert_eq!(code, 200);
    let texts: Vec<_> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts, ["alpha hello 2", "alpha hello 3"]);
    assert_eq!(body["older"], 2);
    assert_eq!(status(&s, Some(&alice), None, &bad_asks[1]).await.0, 400);
    assert_eq!(status(&s, Some(&alice), None, &bad_asks[2]).await.0, 400);
    assert_eq!(status(&s, Some(&alice), None, &bad_asks[3]).await.0, 400);
    assert_eq!(status(&s, Some(&alice), None, &bad_asks[4]).await.0, 404);
    assert_eq!(status(&s, Some(&nobody), None, &page).await.0, 404, "not granted");

    // A session cookie works as well (a GET needs no Origin).
    let cookie = s.login("alice").await;
    assert_eq!(status(&s, None, Some(&cookie), &page).await.0, 200);

    // A revoked token stops working at once.
    let id = lanbox::auth::manage::token_id(&lanbox::auth::secrets::digest(&alice));
    let root = s.token("root").await;
    let (code, _) = request(&s, "DELETE", &alice, &format!("/api/v1/tokens/{id}"), None).await;
    assert!(code == 200 || code == 204, "revoke: {code}");
    assert_eq!(status(&s, Some(&alice), None, &page).await.0, 401);
    assert_eq!(status(&s, Some(&root), None, &page).await.0, 200);
}
