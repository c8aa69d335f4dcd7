//! The browser inbox as the box serves it, over real TLS: the page and its assets (types,
//! caching, the Content-Security-Policy), and the first-run set-up that creates the first admin
//! only with the setup code from the console, once.

mod support;

use serde_json::{Value, json};
use support::server::*;

fn header<'a>(res: &'a reqwest::Response, name: &str) -> &'a str {
    res.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[tokio::test]
async fn the_page_and_its_assets_are_served_with_caching_and_csp() {
    let s = TestServer::start().await;
    let c = s.client();
    let res = c.get(s.url("/")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(header(&res, "content-type").starts_with("text/html"));
    assert_eq!(header(&res, "cache-control"), "no-cache");
    let csp = header(&res, "content-security-policy").to_string();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert!(csp.contains(&format!("wss://{HOST}:{}", s.addr.port())), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("http:"), "{csp}");
    let etag = header(&res, "etag").to_string();
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains(" style="),
        "no inline script or style"
    );

    let again = c
        .get(s.url("/"))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);

    let assets: Vec<&str> = html
        .split("\"/assets/")
        .skip(1)
        .map(|p| &p[..p.find('"').unwrap()])
        .collect();
    assert!(assets.len() >= 5, "{assets:?}");
    for path in &assets {
        let res = c.get(s.url(&format!("/assets/{path}"))).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let ctype = header(&res, "content-type");
        let want = if path.ends_with(".js") {
            "text/javascript"
        } else if path.ends_with(".css") {
            "text/css"
        } else {
            "image/svg+xml"
        };
        assert!(ctype.starts_with(want), "{path}: {ctype}");
        assert!(header(&res, "cache-control").contains("immutable"), "{path}");
    }
    // A page from before an update asks for an older version: today's bytes, not cached.
    let (_, rest) = assets[0].split_once('/').unwrap();
    let old = c
        .get(s.url(&format!("/assets/0000000000000000/{rest}")))
        .send()
        .await
        .unwrap();
    assert_eq!(old.status(), 200);
    assert_eq!(header(&old, "cache-control"), "no-cache");
    let missing = c.get(s.url("/assets/x/js/nope.js")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    // The API keeps its JSON 404 and its no-store.
    let api = c.get(s.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(api.status(), 404);
    assert_eq!(header(&api, "cache-control"), "no-store");
    let body: Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
}

async fn setup(s: &TestServer, origin: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = s.client().post(s.url("/api/v1/setup")).json(&body);
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn first_run_creates_one_admin_with_the_console_code() {
    let s = TestServer::start().await;
    let code = s
        .state
        .setup
        .code()
        .expect("a box without users has a setup code");
    let state: Value = s
        .client()
        .get(s.url("/api/v1/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        state,
        json!({"needed": true, "sealed": false, "certificate_sha256": s.fp})
    );

    let body =
        |code: &str, password: &str| json!({"username": "boss", "password": password, "setup_code": code});
    let origin = s.origin();
    let (st, e) = setup(&s, Some(&origin), body("AAAAA-AAAAA-AAAAA", PASSWORD)).await;
    assert_eq!((st, e["error"]["code"].as_str()), (403, Some("bad_setup_code")));
    let (st, _) = setup(&s, Some("https://evil.example"), body(&code, PASSWORD)).await;
    assert_eq!(st, 403, "another site's page cannot set the box up");
    let (st, e) = setup(&s, Some(&origin), body(&code, "short")).await;
    assert_eq!(st, 400, "{e}");
    assert_eq!(
        s.state.setup.code().as_deref(),
        Some(code.as_str()),
        "a refused attempt keeps the code"
    );

    // Two racing requests with the right code: exactly one admin.
    let lower = code.to_lowercase();
    let (a, b) = tokio::join!(
        setup(&s, Some(&origin), body(&code, PASSWORD)),
        setup(
            &s,
            None,
            json!({"username": "other", "password": PASSWORD, "setup_code": lower})
        ),
    );
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [201, 409], "{a:?} {b:?}");
    let winner = if a.0 == 201 { a.1 } else { b.1 };
    assert_eq!(winner["role"], "admin");

    assert!(s.state.setup.code().is_none(), "the code is used up");
    let state: Value = s
        .client()
        .get(s.url("/api/v1/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["needed"], false);
    let (st, _) = setup(&s, Some(&origin), body(&code, PASSWORD)).await;
    assert_eq!(st, 409);
    // The new admin signs in.
    let name = winner["name"].as_str().unwrap();
    let res = s
        .client()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_box_with_users_refuses_setup() {
    let s = TestServer::start().await;
    s.user("root", lanbox::auth::Role::Admin, &[]).await;
    let state: Value = s
        .client()
        .get(s.url("/api/v1/setup"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["needed"], false);
    // Even with the code generated at start (no user existed then), once a user exists it is
    // refused.
    let code = s.state.setup.code().unwrap_or_default();
    let (st, _) = setup(
        &s,
        None,
        json!({"username": "intruder", "password": PASSWORD, "setup_code": code}),
    )
    .await;
    assert_eq!(st, 409);
}
