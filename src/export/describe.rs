//! What a transcript says about a message beyond its text: the sender line, service events,
//! polls, locations, contacts and dice as lines, file sizes, and the text's entities as byte
//! ranges with their [`Attr`]ibutes (converted from the API shape's UTF-16 offsets).

use super::fonts::Style;
use super::layout::Attr;
use crate::view::dto::MessageDto;

pub fn human_size(n: u64) -> String {
    match n {
        0..1024 => format!("{n} B"),
        1024..1_048_576 => format!("{:.1} KB", n as f64 / 1024.0),
        _ => format!("{:.1} MB", n as f64 / 1_048_576.0),
    }
}

pub fn sender_name(m: &MessageDto) -> String {
    let mut s = m
        .sender
        .name
        .clone()
        .or_else(|| m.sender.signature.clone())
        .unwrap_or_else(|| match m.sender.kind {
            "anonymous_admin" => "Anonymous admin".into(),
            _ if m.direction == "outgoing" => "Bot".into(),
            _ => "Unknown".into(),
        });
    if let Some(u) = &m.sender.username {
        s.push_str(&format!(" (@{u})"));
    }
    if let Some(by) = m.sent_by.as_ref().and_then(|b| b.name.as_ref()) {
        s.push_str(&format!(" — sent by {by}"));
    }
    s
}

pub fn service_line(s: &serde_json::Value) -> String {
    let event = s.get("event").and_then(|e| e.as_str()).unwrap_or("event");
    let names = s
        .get("users")
        .and_then(|u| u.as_array())
        .map(|us| {
            us.iter()
                .filter_map(|u| u.get("name").and_then(|n| n.as_str()))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default();
    let name = s.get("name").and_then(|n| n.as_str()).unwrap_or("");
    match event {
        "members_joined" => format!("{names} joined"),
        "member_left" => format!("{names} left"),
        "pinned" => "pinned a message".into(),
        "title_changed" => format!("changed the title to {name}"),
        "topic_created" => format!("created the topic {name}"),
        "chat_created" => "created the chat".into(),
        other => other.replace('_', " "),
    }
}

/// Poll options, location, venue, contact, dice: one line each.
pub fn detail_lines(m: &MessageDto) -> Vec<String> {
    let d = &m.details;
    let mut out = Vec::new();
    if let Some(p) = &d.poll {
        for o in p.get("options").and_then(|o| o.as_array()).into_iter().flatten() {
            out.push(format!(
                "○ {} — {} votes",
                o.get("text").and_then(|t| t.as_str()).unwrap_or(""),
                o.get("votes").and_then(|v| v.as_u64()).unwrap_or(0)
            ));
        }
        out.push(format!(
            "Poll, {} voters{}",
            p.get("total_voters").and_then(|v| v.as_u64()).unwrap_or(0),
            if p.get("closed").and_then(|v| v.as_bool()) == Some(true) {
                ", closed"
            } else {
                ""
            }
        ));
    }
    let loc = d
        .location
        .as_ref()
        .or_else(|| d.venue.as_ref().and_then(|v| v.get("location")));
    if let Some(l) = loc {
        let lat = l.get("latitude").and_then(|v| v.as_f64()).unwrap_or(0.0);
        let lon = l.get("longitude").and_then(|v| v.as_f64()).unwrap_or(0.0);
        out.push(format!("Location {lat:.5}, {lon:.5}"));
    }
    if let Some(v) = &d.venue
        && let Some(a) = v.get("address").and_then(|a| a.as_str())
    {
        out.push(a.to_string());
    }
    if let Some(c) = &d.contact {
        let s = |k: &str| c.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        out.push(
            format!("Contact: {} {} {}", s("first_name"), s("last_name"), s("phone"))
                .trim_end()
                .to_string(),
        );
    }
    if let Some(dc) = &d.dice {
        out.push(format!(
            "{} {}",
            dc.get("emoji").and_then(|v| v.as_str()).unwrap_or("🎲"),
            dc.get("value").and_then(|v| v.as_i64()).unwrap_or(0)
        ));
    }
    if let Some(r) = &d.reason {
        out.push(format!("(not shown: {r})"));
    }
    out
}

/// Entities as byte ranges with their attributes, from the UTF-16 offsets of the API shape.
pub fn entity_attrs(text: &str, m: &MessageDto) -> Vec<(std::ops::Range<usize>, Attr)> {
    let mut u16_to_byte = Vec::with_capacity(text.len() + 1);
    for (i, c) in text.char_indices() {
        for _ in 0..c.len_utf16() {
            u16_to_byte.push(i);
        }
    }
    u16_to_byte.push(text.len());
    let at = |u: u32| *u16_to_byte.get(u as usize).unwrap_or(&text.len());
    m.entities
        .iter()
        .filter_map(|e| {
            let r = at(e.offset)..at(e.offset + e.length);
            let mut a = Attr::default();
            match e.kind.as_str() {
                "bold" => a.style = Some(Style::Bold),
                "italic" => a.style = Some(Style::Italic),
                "underline" => a.underline = true,
                "strikethrough" => a.strike = true,
                "code" | "pre" => {
                    a.style = Some(Style::Mono);
                    a.code = true;
                }
                "text_link" => a.link = e.url.clone(),
                "url" => {
                    let u = &text[r.clone()];
                    a.link = Some(if u.contains("://") {
                        u.to_string()
                    } else {
                        format!("https://{u}")
                    });
                }
                "email" => a.link = Some(format!("mailto:{}", &text[r.clone()])),
                _ => return None,
            }
            Some((r, a))
        })
        .collect()
}

pub fn attr_at(attrs: &[(std::ops::Range<usize>, Attr)], i: usize) -> Attr {
    let mut out = Attr::default();
    for (_, a) in attrs.iter().filter(|(r, _)| r.contains(&i)) {
        out.style = match (out.style, a.style) {
            (Some(Style::Bold), Some(Style::Italic)) | (Some(Style::Italic), Some(Style::Bold)) => {
                Some(Style::BoldItalic)
            }
            (o, n) => n.or(o),
        };
        out.link = a.link.clone().or(out.link);
        out.underline |= a.underline;
        out.strike |= a.strike;
        out.code |= a.code;
    }
    out
}
