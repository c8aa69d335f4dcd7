//! Request parameters as Telegram reads them: from the query string, a JSON body or a form
//! body, a multipart body, with numbers and JSON objects also accepted inside strings.

use axum::http::{HeaderMap, Uri, header};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::multipart::{self, Upload};

/// A parameter problem, answered as `400 Bad Request: <what>`.
pub(super) struct BadRequest(pub String);

impl BadRequest {
    fn new(what: &str) -> BadRequest {
        BadRequest(what.to_owned())
    }
}

pub(super) type Params = Map<String, Value>;

/// Query string, then the body (JSON, form or multipart). Form, multipart and query values stay
/// strings; the getters below read numbers and JSON out of them, as Telegram does. File parts
/// come back separately.
pub(super) fn params(
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<(Params, Vec<Upload>), BadRequest> {
    let mut out = Params::new();
    let mut add_form = |bytes: &[u8]| {
        for (k, v) in form_urlencoded::parse(bytes) {
            out.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    };
    add_form(uri.query().unwrap_or("").as_bytes());
    if body.is_empty() {
        return Ok((out, Vec::new()));
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("application/json") {
        let obj: Params =
            serde_json::from_slice(body).map_err(|_| BadRequest::new("can't parse JSON object"))?;
        out.extend(obj);
    } else if content_type.starts_with("application/x-www-form-urlencoded") {
        add_form(body);
    } else if content_type.starts_with("multipart/form-data") {
        let (fields, files) = multipart::parse(content_type, body)
            .ok_or_else(|| BadRequest::new("can't parse multipart/form-data body"))?;
        for (k, v) in fields {
            out.insert(k, Value::String(v));
        }
        return Ok((out, files));
    } else {
        return Err(BadRequest::new(
            "unsupported request body (the simulator reads JSON, forms and multipart)",
        ));
    }
    Ok((out, Vec::new()))
}

pub(super) fn int(p: &Params, name: &str) -> Result<Option<i64>, BadRequest> {
    match p.get(name) {
        None | Some(Value::Null) => Some(None),
        Some(Value::Number(n)) => n.as_i64().map(Some),
        Some(Value::String(s)) => s.trim().parse().ok().map(Some),
        Some(_) => None,
    }
    .ok_or_else(|| BadRequest::new(&format!("invalid {name} specified")))
}

pub(super) fn string(p: &Params, name: &str) -> Option<String> {
    match p.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// An object or array parameter, given as JSON or as a JSON-serialised string.
pub(super) fn object(p: &Params, name: &str) -> Result<Option<Value>, BadRequest> {
    match p.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => serde_json::from_str(s)
            .map(Some)
            .map_err(|_| BadRequest::new(&format!("can't parse {name} JSON object"))),
        Some(v) => Ok(Some(v.clone())),
    }
}

pub(super) fn truthy(v: &Value) -> bool {
    matches!(v, Value::Bool(true)) || matches!(v, Value::String(s) if s == "true" || s == "1")
}
