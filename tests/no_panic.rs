//! Property tests: no input panics a normalizer or the reply body parser. Each property
//! feeds arbitrary JSON, fixtures with values replaced at random paths (far-future and
//! negative timestamps, huge numbers, wrong types), and fixtures with bytes flipped; it
//! asserts only that the code returns (an error is fine) and that every event it makes
//! renders. `PROPTEST_CASES` raises the count (the default is bounded for CI).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};
use switchboard::channels::outbound::OutboundMessage;
use switchboard::channels::{meta_webhook, telegram, NormalizeContext, Verified};

const CTX: NormalizeContext<'static> = NormalizeContext {
    public_url: "http://relay.test",
};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 512;

fn config() -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn fixtures(dir: &str) -> Vec<Value> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut out = Vec::new();
    for e in std::fs::read_dir(root.join(dir)).unwrap() {
        let p = e.unwrap().path();
        if p.extension().and_then(|x| x.to_str()) == Some("json") {
            if let Ok(v) = serde_json::from_slice(&std::fs::read(&p).unwrap()) {
                out.push(v);
            }
        }
    }
    assert!(!out.is_empty(), "no fixtures in {dir}");
    out
}

/// Leaves chosen to break things: timestamps no formatter can write, extremes, types
/// a field does not expect.
fn nasty_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(json!("300000000000000")),
        Just(json!(300_000_000_000_i64)),
        Just(json!(300_000_000_000_000_i64)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(1e308)),
        Just(json!(-0.5)),
        Just(json!("")),
        Just(json!("-9223372036854775808")),
        Just(json!("../..")),
        Just(json!("\u{0}\u{202e}é😀")),
        Just(json!(null)),
        Just(json!(true)),
        Just(json!([])),
        Just(json!({})),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,40}".prop_map(Value::from),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    nasty_leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "[a-z_]{1,12}".boxed(),
                    prop::sample::select(KEYS).prop_map(str::to_owned).boxed()
                ],
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Field names the normalizers look for, so arbitrary objects reach deep code.
const KEYS: &[&str] = &[
    "object",
    "entry",
    "changes",
    "value",
    "field",
    "messages",
    "statuses",
    "metadata",
    "phone_number_id",
    "contacts",
    "from",
    "id",
    "timestamp",
    "time",
    "type",
    "text",
    "body",
    "messaging",
    "sender",
    "recipient",
    "message",
    "mid",
    "attachments",
    "payload",
    "url",
    "reaction",
    "read",
    "watermark",
    "postback",
    "update_id",
    "date",
    "edit_date",
    "chat",
    "photo",
    "document",
    "callback_query",
    "edited_message",
    "message_reaction",
    "my_chat_member",
    "channel",
    "kind",
    "to",
    "raw",
    "method",
    "media_id",
    "caption",
    "template",
    "interactive",
    "latitude",
    "longitude",
    "errors",
];

/// Every path (as JSON pointers) of a value, the root included.
fn paths(v: &Value, at: String, out: &mut Vec<String>) {
    out.push(at.clone());
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                paths(
                    c,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        Value::Array(a) => {
            for (i, c) in a.iter().enumerate() {
                paths(c, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// A fixture with up to four values replaced (by nasty leaves or arbitrary JSON).
fn mutated(seeds: Vec<Value>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(seeds),
        prop::collection::vec((any::<prop::sample::Index>(), arb_json()), 1..5),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..3),
    )
        .prop_map(|(mut v, muts, flips)| {
            for (i, new) in muts {
                let mut all = Vec::new();
                paths(&v, String::new(), &mut all);
                let p = i.get(&all).clone();
                if let Some(slot) = v.pointer_mut(&p) {
                    *slot = new;
                }
            }
            let mut bytes = serde_json::to_vec(&v).unwrap();
            for (i, b) in flips {
                let n = bytes.len();
                bytes[i.index(n)] = b;
            }
            bytes
        })
}

fn check_meta(body: &[u8]) {
    if let Ok((_, events)) =
        meta_webhook::normalize(&Verified::assume_verified_for_tests(body), &CTX)
    {
        for e in events {
            let _ = e.to_body("acme", true);
        }
    }
}

fn check_telegram(body: &[u8]) {
    if let Ok(events) = telegram::inbound::normalize(
        "5000000001",
        &Verified::assume_verified_for_tests(body),
        &CTX,
    ) {
        for e in events {
            let _ = e.to_body("acme", true);
        }
    }
}

fn meta_envelope(object: &'static str) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(arb_json(), 0..3).prop_map(move |entry| {
        serde_json::to_vec(&json!({"object": object, "entry": entry})).unwrap()
    })
}

fn reply_seeds() -> Vec<Value> {
    let ch = json!({"kind": "whatsapp", "id": "106540352242922"});
    let tg = json!({"kind": "telegram", "id": "5000000001"});
    vec![
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "text", "text": "Hello!", "reply_to": "wamid.x"}}),
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "image", "url": "https://e.test/a.jpg", "caption": "c"}}),
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "document", "media_id": "123", "filename": "a.pdf"}}),
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "template", "name": "hello", "language": "en_US", "components": []}}),
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "interactive", "text": "pick", "buttons": [{"id": "a", "title": "A"}]}}),
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "reaction", "message_id": "wamid.x", "emoji": "👍"}}),
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "location", "latitude": 1.5, "longitude": 2.5, "name": "n"}}),
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "contacts", "contacts": [{"name": {"first_name": "A", "formatted_name": "A"}, "phones": [{"phone": "+1"}]}]}}),
        json!({"channel": ch, "to": "15551234567", "message": {"kind": "read", "message_id": "wamid.x"}}),
        json!({"channel": tg, "to": "-1001234567890", "message": {"kind": "typing"}}),
        json!({"channel": tg, "to": "42", "method": "sendMessage", "raw": {"text": "x"}}),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn whatsapp_never_panics(body in prop_oneof![
        mutated(fixtures("whatsapp")),
        meta_envelope("whatsapp_business_account"),
    ]) {
        check_meta(&body);
    }

    #[test]
    fn instagram_never_panics(body in prop_oneof![
        mutated(fixtures("instagram")),
        meta_envelope("instagram"),
    ]) {
        check_meta(&body);
    }

    #[test]
    fn messenger_never_panics(body in prop_oneof![
        mutated(fixtures("messenger")),
        meta_envelope("page"),
    ]) {
        check_meta(&body);
    }

    #[test]
    fn telegram_never_panics(body in prop_oneof![
        mutated(fixtures("telegram")),
        (any::<i64>(), prop::sample::select(KEYS), arb_json()).prop_map(|(id, k, v)| {
            serde_json::to_vec(&json!({"update_id": id, k: v})).unwrap()
        }),
        arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
    ]) {
        check_telegram(&body);
    }

    #[test]
    fn reply_parser_never_panics(body in prop_oneof![
        mutated(reply_seeds()),
        arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        prop::collection::vec(any::<u8>(), 0..64),
    ]) {
        let _ = OutboundMessage::parse(&body);
    }
}

/// The seeds themselves are good input (so the mutations start from real shapes).
#[test]
fn reply_seeds_parse() {
    let bad: Vec<String> = reply_seeds()
        .iter()
        .filter(|s| OutboundMessage::parse(&serde_json::to_vec(s).unwrap()).is_err())
        .map(|s| s["message"]["kind"].to_string())
        .collect();
    assert!(bad.len() <= 2, "seeds that do not parse: {bad:?}");
}
