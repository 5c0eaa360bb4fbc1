//! Every event the CRM receives for every Meta fixture validates against the published
//! JSON Schema (docs/event.schema.json), checked by Python's `jsonschema` — a validator
//! we did not write.

use switchboard::channels::ChannelKind;

use crate::helpers::*;

/// Kept here too for the suites that name it by this module.
pub use crate::helpers::assert_events_match_schema;

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
