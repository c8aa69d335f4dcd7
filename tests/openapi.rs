//! The OpenAPI 3.1 document matches the code: it names exactly the router's routes, its
//! references resolve, and what the routes and the WebSocket send fits its schemas.

mod support;

use lanbox::model::ChatKind;
use serde_json::{Value, json};
use support::messages::{self, text_message};
use support::server::*;

/// Every route in the router is in the OpenAPI document and the other way round, and the
/// document is well-formed 3.1 with every `$ref` resolving.
#[tokio::test]
async fn openapi_document_matches_the_routes() {
    let s = TestServer::start().await;
    let res = s
        .client()
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                documented.push((method.clone(), path.clone()));
            }
        }
    }
    let mut routed: Vec<(String, String)> = lanbox::api::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    documented.sort();
    routed.sort();
    assert_eq!(documented, routed);
    let text = doc.to_string();
    for r in text.split("\"$ref\":\"#/").skip(1) {
        let target = &r[..r.find('"').unwrap()];
        let mut node = &doc;
        for part in target.split('/') {
            node = &node[part];
        }
        assert!(!node.is_null(), "dangling $ref #/{target}");
    }
}

/// The document describes what the code sends: responses of every route, errors, and the
/// WebSocket's messages are checked against its schemas.
#[tokio::test]
async fn responses_match_the_openapi_schemas() {
    let (s, a, _) = workspace().await;
    let root = s.token("root").await;
    let doc: Value = serde_json::from_str(lanbox::api::OPENAPI).unwrap();
    let check = |v: &Value, schema: &str| {
        let sch = json!({"$ref": format!("#/components/schemas/{schema}")});
        if let Err(e) = validate(&doc, &sch, v, schema) {
            panic!("{e}\n{v}");
        }
    };
    let chat = format!("{a}:1001");
    for (path, schema) in [
        ("/api/v1/health".to_string(), "Health"),
        ("/api/v1/me".into(), "Me"),
        ("/api/v1/chats".into(), "ChatPage"),
        ("/api/v1/chats/0:-100700".into(), "Chat"),
        (format!("/api/v1/chats/{chat}/messages?limit=2"), "MessagePage"),
        (format!("/api/v1/chats/{chat}/messages/1"), "Message"),
        ("/api/v1/search?q=secret".into(), "SearchReply"),
        ("/api/v1/stats".into(), "Stats"),
        ("/api/v1/events?after=0".into(), "EventsPage"),
        ("/api/v1/chats/9:9".into(), "Error"),
        (format!("/api/v1/chats/{chat}/contact"), "Contact"),
        ("/api/v1/chats/0:-100700/contact".into(), "Contact"),
    ] {
        let (_, v) = get(&s, &root, &path).await;
        check(&v, schema);
    }
    let (_, accounts) = get(&s, &root, "/api/v1/accounts").await;
    for acc in accounts.as_array().unwrap() {
        check(acc, "Account");
    }
    let (_, read) = post(
        &s,
        &root,
        &format!("/api/v1/chats/{chat}/read"),
        json!({"up_to": 1}),
    )
    .await;
    check(&read, "ReadState");
    let (_, made) = post(
        &s,
        &root,
        "/api/v1/canned",
        json!({"shortcut": "hi", "text": "Hi {{contact.first_name}}", "scope": "team"}),
    )
    .await;
    check(&made, "Canned");
    check(&get(&s, &root, "/api/v1/canned").await.1, "CannedList");
    let (_, ticket) = post(&s, &root, "/api/v1/ws/ticket", json!({})).await;
    check(&ticket, "Ticket");
    let res = s
        .client()
        .post(s.url("/api/v1/auth/login"))
        .json(&json!({"username": "root", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    check(&res.json().await.unwrap(), "LoginReply");

    // Messages of every kind the model has render within the schema.
    let media = lanbox::model::Body::Media(lanbox::model::Media {
        kind: lanbox::model::MediaKind::Image,
        file: Default::default(),
        thumbnail: None,
        caption: Some(lanbox::model::Text::plain("a caption")),
        title: None,
        performer: None,
        emoji: None,
        spoiler: false,
    });
    let mut m = text_message(a, &messages::chat(1001, ChatKind::Private, "Anna"), 50, "x");
    m.content.body = media;
    s.ingest(a, vec![m]).await;
    let (_, v) = get(&s, &root, &format!("/api/v1/chats/{chat}/messages/50")).await;
    check(&v, "Message");
    assert_eq!(v["media"]["has_thumbnail"], false);

    let mut ws = ws_token(&s, &root).await;
    check(
        &call(&mut ws, json!({"type": "subscribe"})).await,
        "WsServerMessage",
    );
    check(&call(&mut ws, json!({"type": "ping"})).await, "WsServerMessage");
    check(
        &call(&mut ws, json!({"type": "resume", "from_seq": 1_000_000})).await,
        "WsServerMessage",
    );
    check(
        &call(&mut ws, json!({"type": "typing", "chat": "0:-100700"})).await,
        "WsServerMessage",
    );
    check(
        &call(
            &mut ws,
            json!({"type": "send_message", "chat": chat, "text": "x"}),
        )
        .await,
        "WsServerMessage",
    );
    check(
        &call(&mut ws, json!({"type": "subscribe"})).await,
        "WsServerMessage",
    );
    s.ingest(
        a,
        vec![text_message(
            a,
            &messages::chat(1001, ChatKind::Private, "Anna"),
            60,
            "y",
        )],
    )
    .await;
    loop {
        let m = recv(&mut ws).await;
        check(&m, "WsServerMessage");
        if m["type"] == "message.created" {
            check(&m, "Event");
            break;
        }
    }
}

/// Checks `v` against a schema of the OpenAPI document `doc` (the subset lanbox's document
/// uses: `$ref`, `oneOf` (as any-of), `const`, `enum`, `type` (one or a list), `properties`,
/// `required`, `additionalProperties: false`, `items`).
pub fn validate(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    v: &serde_json::Value,
    at: &str,
) -> Result<(), String> {
    use serde_json::Value;
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let mut node = doc;
        for part in r.trim_start_matches("#/").split('/') {
            node = &node[part];
        }
        return validate(doc, node, v, at);
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let errors: Vec<String> = options
            .iter()
            .filter_map(|o| validate(doc, o, v, at).err())
            .collect();
        return if errors.len() < options.len() {
            Ok(())
        } else {
            Err(errors.join(" | "))
        };
    }
    if let Some(c) = schema.get("const")
        && c != v
    {
        return Err(format!("{at}: {v} is not {c}"));
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array)
        && !e.contains(v)
    {
        return Err(format!("{at}: {v} not in {e:?}"));
    }
    if let Some(t) = schema.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let ok = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "string" => v.is_string(),
            "integer" => v.is_i64() || v.is_u64(),
            "number" => v.is_number(),
            "boolean" => v.is_boolean(),
            "object" => v.is_object(),
            "array" => v.is_array(),
            _ => false,
        });
        if !ok {
            return Err(format!("{at}: {v} is not {types:?}"));
        }
    }
    if let Value::Object(o) = v {
        let props = schema.get("properties").and_then(Value::as_object);
        for r in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let r = r.as_str().unwrap();
            if !o.contains_key(r) {
                return Err(format!("{at}: missing `{r}`"));
            }
        }
        for (k, x) in o {
            match props.and_then(|p| p.get(k)) {
                Some(s) => validate(doc, s, x, &format!("{at}.{k}"))?,
                None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                    return Err(format!("{at}: undocumented field `{k}`"));
                }
                None => {}
            }
        }
    }
    if let (Value::Array(a), Some(items)) = (v, schema.get("items")) {
        for (i, x) in a.iter().enumerate() {
            validate(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}
