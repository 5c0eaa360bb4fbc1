//! Every event the CRM receives for every Meta fixture validates against the published
//! JSON Schema (docs/event.schema.json), checked by Python's `jsonschema` — a validator
//! we did not write.

use std::io::Write;

use switchboard::channels::ChannelKind;

use crate::helpers::*;

const VALIDATE: &str = r#"
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
bad = 0
for i, line in enumerate(sys.stdin):
    ev = json.loads(line)
    for err in v.iter_errors(ev):
        bad += 1
        print(f"event {i} ({ev.get('type')}): {err.message} at {list(err.absolute_path)}")
sys.exit(1 if bad else 0)
"#;

#[tokio::test]
async fn every_event_from_every_meta_fixture_matches_the_published_schema() {
    let app = spawn_app().await;
    // The accounts the Instagram and Messenger fixtures are addressed to.
    app.put_channel(ChannelKind::Instagram, "17841405822304914", "acme", "t")
        .await;
    app.put_channel(ChannelKind::Messenger, "682498302938465", "acme", "t")
        .await;
    let mut sent = 0;
    for dir in ["whatsapp", "whatsapp/account", "instagram", "messenger"] {
        for name in fixture_names(dir) {
            app.forget_dedupe().await;
            let resp = app.post_meta(&fixture(&name)).await;
            assert!(resp.status().is_success(), "{name}: {}", resp.status());
            sent += 1;
        }
    }
    let events = app.crm_events().await;
    assert!(
        events.len() >= sent,
        "{} events for {sent} fixtures",
        events.len()
    );

    assert_events_match_schema(&events);
}

/// Asserts that every event validates against docs/event.schema.json, checked by
/// Python's `jsonschema`; the message lists each violation.
pub fn assert_events_match_schema(events: &[serde_json::Value]) {
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/event.schema.json");
    let mut child = std::process::Command::new("python3")
        .args(["-c", VALIDATE, schema])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    {
        let mut stdin = child.stdin.take().unwrap();
        for e in events {
            writeln!(stdin, "{e}").unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "schema violations:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
