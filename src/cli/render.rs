//! How `listen` shows one event: a headline (type, channel, id) and the fields a CRM
//! developer looks for (conversation, sender, message, status …), message text
//! included, since this is printed only on the developer's own terminal.

use serde_json::Value;

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn text_at(v: &Value, pointer: &str) -> Option<String> {
    match v.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// `kind:id` of the event's channel.
fn channel(event: &Value) -> String {
    format!(
        "{}:{}",
        str_at(event, "/channel/kind").unwrap_or("?"),
        str_at(event, "/channel/id").unwrap_or("?")
    )
}

/// One line naming the event: `message.received evt_… whatsapp:1065… (tenant demo)`.
pub fn headline(event: &Value) -> String {
    format!(
        "{} {} {} (tenant {}, at {})",
        str_at(event, "/type").unwrap_or("?"),
        str_at(event, "/id").unwrap_or("?"),
        channel(event),
        str_at(event, "/tenant").unwrap_or("?"),
        str_at(event, "/timestamp").unwrap_or("?"),
    )
}

/// The fields worth seeing, one `name: value` per line, in a fixed order.
pub fn details(event: &Value) -> Vec<String> {
    let d = event.get("data").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    let mut push = |label: &str, value: Option<String>| {
        if let Some(v) = value.filter(|v| !v.is_empty()) {
            out.push(format!("{label:<13}{v}"));
        }
    };
    push("conversation", text_at(d, "/conversation/id"));
    let sender = match (text_at(d, "/sender/name"), text_at(d, "/sender/id")) {
        (Some(name), Some(id)) => Some(format!("{name} ({id})")),
        (None, id) => id,
        (name, None) => name,
    };
    push("sender", sender);
    let message = text_at(d, "/message/id").map(|id| match text_at(d, "/message/kind") {
        Some(kind) => format!("{id} ({kind})"),
        None => id,
    });
    push("message", message);
    push("reply to", text_at(d, "/message/reply_to"));
    push(
        "text",
        text_at(d, "/message/text").map(|t| format!("{t:?}")),
    );
    let media = text_at(d, "/message/media/id").map(|id| {
        let mime = text_at(d, "/message/media/mime_type").unwrap_or_default();
        let url = text_at(d, "/message/media/url").unwrap_or_default();
        format!("{id} {mime} {url}").trim_end().to_owned()
    });
    push("media", media);
    let location = match (
        text_at(d, "/message/location/latitude"),
        text_at(d, "/message/location/longitude"),
    ) {
        (Some(lat), Some(lon)) => Some(format!("{lat}, {lon}")),
        _ => None,
    };
    push("location", location);
    push("status", text_at(d, "/status"));
    push("recipient", text_at(d, "/recipient/id"));
    if let Some(errors) = d.get("errors").and_then(Value::as_array) {
        for e in errors {
            push(
                "error",
                Some(format!(
                    "{} {}",
                    text_at(e, "/code").unwrap_or_default(),
                    text_at(e, "/title").unwrap_or_default()
                )),
            );
        }
    }
    if d.get("emoji").is_some() {
        let emoji = text_at(d, "/emoji").unwrap_or_default();
        push(
            "emoji",
            Some(if emoji.is_empty() {
                "(removed)".to_owned()
            } else {
                emoji
            }),
        );
    }
    push("title", text_at(d, "/title"));
    push("payload", text_at(d, "/payload"));
    push("watermark", text_at(d, "/watermark"));
    push("comment", text_at(d, "/comment/id"));
    push("post", text_at(d, "/post/id"));
    push(
        "comment text",
        text_at(d, "/text").map(|t| format!("{t:?}")),
    );
    let template =
        text_at(d, "/template/name").map(|name| match text_at(d, "/template/language") {
            Some(lang) => format!("{name} ({lang})"),
            None => name,
        });
    push("template", template);
    push("reason", text_at(d, "/reason"));
    push("waba", text_at(d, "/waba_id"));
    push("field", text_at(d, "/field"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn shows_a_text_message_with_its_sender_and_text() {
        let event = json!({
            "id": "evt_1", "type": "message.received", "tenant": "demo",
            "timestamp": "2026-01-01T00:00:00Z",
            "channel": {"kind": "whatsapp", "id": "106540352242922"},
            "data": {
                "conversation": {"id": "16505551234"},
                "sender": {"id": "16505551234", "name": "Sheena Nelson"},
                "message": {"id": "wamid.X", "kind": "text", "text": "Hi \"there\""}
            }
        });
        assert_eq!(
            headline(&event),
            "message.received evt_1 whatsapp:106540352242922 (tenant demo, at 2026-01-01T00:00:00Z)"
        );
        let lines = details(&event).join("\n");
        assert!(lines.contains("conversation 16505551234"), "{lines}");
        assert!(
            lines.contains("sender       Sheena Nelson (16505551234)"),
            "{lines}"
        );
        assert!(lines.contains("message      wamid.X (text)"), "{lines}");
        assert!(lines.contains(r#"text         "Hi \"there\"""#), "{lines}");
    }

    #[test]
    fn a_removed_reaction_says_so_and_unknown_shapes_do_not_panic() {
        let event =
            json!({"type": "message.reaction", "data": {"emoji": "", "message": {"id": "m1"}}});
        let lines = details(&event).join("\n");
        assert!(lines.contains("(removed)"), "{lines}");
        assert!(details(&json!(42)).is_empty());
        assert!(headline(&json!("x")).starts_with("? ?"));
    }
}
