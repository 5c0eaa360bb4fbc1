//! WhatsApp webhooks through the real HTTP endpoint to a real CRM server, every fixture
//! checked field by field, signatures checked with the `standardwebhooks` crate.

use serde_json::{json, Value};

use crate::helpers::*;

/// Sends one fixture and returns the events the CRM received for it.
async fn events_for(app: &TestApp, name: &str) -> Vec<Value> {
    app.forget_dedupe().await;
    let before = app.crm_requests().await.len();
    let resp = app.post_meta(&fixture(name)).await;
    assert_eq!(resp.status(), 200, "{name}: {}", resp.text().await.unwrap());
    let all = app.crm_requests().await;
    all[before..]
        .iter()
        .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
        .collect()
}

fn only(events: Vec<Value>, name: &str) -> Value {
    assert_eq!(events.len(), 1, "{name}: {events:#?}");
    events.into_iter().next().unwrap()
}

#[tokio::test]
async fn every_whatsapp_fixture_is_normalized_field_by_field() {
    let app = spawn_app().await;
    let media = |ch: &str, id: &str| format!("http://relay.test/v1/media/whatsapp/{ch}/{id}");

    // text
    let e = only(events_for(&app, "whatsapp/text.json").await, "text");
    assert_eq!(e["type"], "message.received");
    assert_eq!(e["tenant"], "acme");
    assert_eq!(
        e["channel"],
        json!({"kind": "whatsapp", "id": "106540352242922"})
    );
    assert_eq!(e["timestamp"], "2025-06-08T20:59:43Z");
    assert!(e["id"].as_str().unwrap().starts_with("evt_"));
    let d = &e["data"];
    assert_eq!(d["conversation"]["id"], "16505551234");
    assert_eq!(d["sender"]["id"], "16505551234");
    assert_eq!(d["sender"]["name"], "Sheena Nelson");
    assert_eq!(
        d["message"]["id"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    );
    assert_eq!(d["message"]["kind"], "text");
    assert_eq!(d["message"]["text"], "Does it come in another color?");
    assert!(d.get("raw").is_none(), "raw only with include_raw");

    // image with caption and relay media URL
    let d = only(events_for(&app, "whatsapp/image.json").await, "image")["data"].clone();
    assert_eq!(d["message"]["kind"], "image");
    assert_eq!(d["message"]["text"], "Taj Mahal");
    assert_eq!(d["message"]["media"]["id"], "1003383421387256");
    assert_eq!(d["message"]["media"]["mime_type"], "image/jpeg");
    assert_eq!(
        d["message"]["media"]["url"],
        media("106540352242922", "1003383421387256")
    );

    // voice note
    let e = only(events_for(&app, "whatsapp/audio_voice.json").await, "audio");
    assert_eq!(e["channel"]["id"], "1122334455667");
    let d = &e["data"];
    assert_eq!(d["message"]["kind"], "audio");
    assert_eq!(d["message"]["media"]["voice"], true);
    assert_eq!(d["message"]["media"]["mime_type"], "audio/ogg; codecs=opus");
    assert_eq!(
        d["message"]["media"]["url"],
        media("1122334455667", "1234567890987654321")
    );
    assert_eq!(d["sender"]["name"], "Test Name");
    assert_eq!(d["sender"]["user_id"], "US.13491208655302741918");

    // video, forwarded
    let d = only(events_for(&app, "whatsapp/video.json").await, "video")["data"].clone();
    assert_eq!(d["message"]["kind"], "video");
    assert_eq!(d["message"]["text"], "caption");
    assert_eq!(d["message"]["forwarded"], true);
    assert_eq!(d["message"]["media"]["id"], "765756756");

    // document, forwarded, with filename
    let d = only(
        events_for(&app, "whatsapp/document_forwarded.json").await,
        "doc",
    )["data"]
        .clone();
    assert_eq!(d["message"]["kind"], "document");
    assert_eq!(d["message"]["media"]["filename"], "filename.pdf");
    assert_eq!(d["message"]["media"]["mime_type"], "application/pdf");
    assert_eq!(d["message"]["forwarded"], true);

    // sticker
    let d = only(events_for(&app, "whatsapp/sticker.json").await, "sticker")["data"].clone();
    assert_eq!(d["message"]["kind"], "sticker");
    assert_eq!(d["message"]["media"]["animated"], false);
    assert_eq!(d["message"]["media"]["mime_type"], "image/webp");

    // location
    let d = only(events_for(&app, "whatsapp/location.json").await, "location")["data"].clone();
    assert_eq!(d["message"]["kind"], "location");
    assert_eq!(d["message"]["location"]["latitude"], 37.44221496582);
    assert_eq!(d["message"]["location"]["name"], "Philz Coffee");

    // contacts, unicode byte-exact
    let d = only(
        events_for(&app, "whatsapp/contacts_unicode.json").await,
        "contacts",
    )["data"]
        .clone();
    assert_eq!(d["message"]["kind"], "contacts");
    assert_eq!(
        d["message"]["contacts"][0]["name"]["formatted_name"],
        "Lucía Gómez"
    );
    assert_eq!(
        d["message"]["contacts"][0]["phones"][0]["wa_id"],
        "19835552319"
    );

    // interactive replies: the chosen title is the text
    let d = only(
        events_for(&app, "whatsapp/interactive_button_reply.json").await,
        "ib",
    )["data"]
        .clone();
    assert_eq!(d["message"]["kind"], "interactive");
    assert_eq!(d["message"]["text"], "Cancel");
    assert_eq!(d["message"]["interactive"]["type"], "button_reply");
    assert_eq!(d["message"]["interactive"]["id"], "cancel-button");
    assert_eq!(
        d["message"]["reply_to"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3MEM2RUJFNkI0RENGQTVDRjUA"
    );
    let d = only(
        events_for(&app, "whatsapp/interactive_list_reply.json").await,
        "il",
    )["data"]
        .clone();
    assert_eq!(d["message"]["text"], "Priority Mail Express");
    assert_eq!(d["message"]["interactive"]["type"], "list_reply");
    assert_eq!(d["message"]["interactive"]["id"], "priority_express");
    assert_eq!(
        d["message"]["interactive"]["description"],
        "Next Day to 2 Days"
    );

    // template quick-reply button
    let d = only(
        events_for(&app, "whatsapp/button_template_quick_reply.json").await,
        "btn",
    )["data"]
        .clone();
    assert_eq!(d["message"]["kind"], "button");
    assert_eq!(d["message"]["text"], "Unsubscribe");
    assert_eq!(d["message"]["button"]["payload"], "Unsubscribe");
    assert!(d["message"]["reply_to"]
        .as_str()
        .unwrap()
        .starts_with("wamid."));

    // order
    let d = only(events_for(&app, "whatsapp/order.json").await, "order")["data"].clone();
    assert_eq!(d["message"]["kind"], "order");
    assert_eq!(d["message"]["order"]["catalog_id"], "194836987003835");
    assert_eq!(
        d["message"]["order"]["product_items"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // product inquiry context
    let d = only(
        events_for(&app, "whatsapp/text_context_product_inquiry.json").await,
        "pi",
    )["data"]
        .clone();
    assert_eq!(d["message"]["text"], "Is this still available?");
    assert_eq!(
        d["message"]["referred_product"]["product_retailer_id"],
        "di9ozbzfi4"
    );
    assert_eq!(
        d["message"]["reply_to"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGA9wcm9kdWN0X2lucXVpcnkA"
    );

    // click-to-WhatsApp ad referral
    let d = only(
        events_for(&app, "whatsapp/text_ctwa_ad_referral.json").await,
        "ctwa",
    )["data"]
        .clone();
    assert_eq!(d["message"]["kind"], "text");
    assert_eq!(d["message"]["referral"]["source_type"], "ad");
    assert_eq!(d["message"]["referral"]["source_id"], "120226305854810726");
    assert!(d["message"]["referral"]["ctwa_clid"].is_string());

    // v25 business-scoped ids and username
    let d = only(
        events_for(&app, "whatsapp/text_v25_bsuid_username.json").await,
        "v25",
    )["data"]
        .clone();
    assert_eq!(d["sender"]["id"], "16315551181");
    assert_eq!(d["sender"]["username"], "@testusername");
    assert_eq!(d["sender"]["user_id"], "US.13491208655302741918");

    // no `from`: a user known only by a business-scoped user id is addressed by it
    let e = only(
        events_for(&app, "whatsapp/text_bsuid_no_from.json").await,
        "no-from",
    );
    assert_eq!(e["type"], "message.received");
    assert_eq!(e["data"]["sender"]["id"], "US.13491208655302741918");
    assert_eq!(e["data"]["conversation"]["id"], "US.13491208655302741918");
    assert_eq!(e["data"]["sender"]["name"], "test user name");
    assert_eq!(e["data"]["sender"]["username"], "@testusername");
    assert_eq!(e["data"]["message"]["kind"], "text");
    assert_eq!(e["data"]["message"]["text"], "this is a text message");
    let e = only(
        events_for(&app, "whatsapp/status_delivered_bsuid_only.json").await,
        "status-bsuid",
    );
    assert_eq!(e["data"]["recipient"]["id"], "US.13491208655302741918");
    assert_eq!(e["data"]["recipient"]["user_id"], "US.13491208655302741918");

    // WhatsApp Business app coexistence: what the business sent from the app
    let e = only(
        events_for(&app, "whatsapp/smb_message_echo_text.json").await,
        "echo",
    );
    assert_eq!(e["type"], "message.echo");
    assert_eq!(e["channel"]["id"], "106540352242922");
    assert_eq!(e["timestamp"], "2025-02-12T00:43:44Z");
    assert_eq!(e["data"]["conversation"]["id"], "16505551234");
    assert_eq!(e["data"]["sender"]["id"], "15550783881");
    assert_eq!(
        e["data"]["message"]["id"],
        "wamid.HBgLMTY0NjcwNDM1OTUVAgARGBIyNDlBOEI5QUQ4NDc0N0FCNjMA"
    );
    assert_eq!(e["data"]["message"]["kind"], "text");
    assert!(e["data"]["message"]["text"]
        .as_str()
        .unwrap()
        .starts_with("Here's the info you requested!"));

    // reactions: added and removed
    let e = only(events_for(&app, "whatsapp/reaction.json").await, "reaction");
    assert_eq!(e["type"], "message.reaction");
    assert_eq!(
        e["data"]["message"]["id"],
        "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA"
    );
    assert_eq!(e["data"]["sender"]["id"], "16505551234");
    assert_eq!(e["data"]["emoji"], "👍");
    let e = only(
        events_for(&app, "whatsapp/reaction_removed.json").await,
        "unreact",
    );
    assert_eq!(e["type"], "message.reaction");
    assert_eq!(e["data"]["message"]["id"], "wamid.yzxyzx=");
    assert_eq!(e["data"]["emoji"], "");

    // system message (no contacts array)
    let d = only(
        events_for(&app, "whatsapp/system_user_changed_number.json").await,
        "system",
    )["data"]
        .clone();
    assert_eq!(d["message"]["kind"], "system");
    assert_eq!(d["message"]["system"]["type"], "user_changed_number");
    assert_eq!(d["message"]["system"]["wa_id"], "12195555358");
    assert!(d["sender"].get("name").is_none());

    // unsupported, with its errors
    let d = only(events_for(&app, "whatsapp/unsupported.json").await, "unsup")["data"].clone();
    assert_eq!(d["message"]["kind"], "unsupported");
    assert_eq!(d["message"]["errors"][0]["code"], 131051);
    assert_eq!(d["message"]["errors"][0]["title"], "Message type unknown");
    assert_eq!(
        d["message"]["errors"][0]["detail"],
        "Message type is currently not supported."
    );
    let d = only(
        events_for(&app, "whatsapp/unsupported_with_type.json").await,
        "unsup2",
    )["data"]
        .clone();
    assert_eq!(d["message"]["kind"], "unsupported");
    assert_eq!(d["message"]["provider_type"], "pool");

    // a message Meta could not deliver whole: value-level errors travel with it
    let d = only(
        events_for(&app, "whatsapp/value_level_errors_unsupported_payload.json").await,
        "verr",
    )["data"]
        .clone();
    assert_eq!(d["message"]["kind"], "interactive");
    assert_eq!(d["message"]["errors"][0]["code"], 131000);
    assert_eq!(
        d["message"]["errors"][0]["detail"],
        "Unsupported webhook payload"
    );

    // value-level errors alone: a provider.event with the raw value
    let e = only(
        events_for(&app, "whatsapp/value_level_errors_rate_limit.json").await,
        "verr2",
    );
    assert_eq!(e["type"], "provider.event");
    assert_eq!(e["data"]["kind"], "errors");
    assert_eq!(e["data"]["field"], "errors");
    assert_eq!(e["data"]["errors"][0]["code"], 130429);
    assert!(e["data"]["raw"]["errors"].is_array());

    // statuses
    for (file, status) in [
        ("whatsapp/status_sent.json", "sent"),
        ("whatsapp/status_delivered.json", "delivered"),
        ("whatsapp/status_read.json", "read"),
    ] {
        let e = only(events_for(&app, file).await, file);
        assert_eq!(e["type"], "message.status");
        assert_eq!(e["data"]["status"], status);
        assert_eq!(e["data"]["message"]["id"], "wamid.xyzxyz");
        assert_eq!(e["data"]["recipient"]["id"], "972987654321");
        // The status's contact entry names the recipient's business-scoped user id.
        assert_eq!(
            e["data"]["recipient"]["user_id"], "US.13491208655302741918",
            "{file}"
        );
        assert_eq!(e["data"]["errors"], json!([]));
        assert_eq!(e["data"]["pricing"]["pricing_model"], "CBP");
    }
    let e = only(
        events_for(&app, "whatsapp/status_failed.json").await,
        "failed",
    );
    assert_eq!(e["data"]["status"], "failed");
    assert_eq!(e["data"]["errors"][0]["code"], 130472);
    assert_eq!(
        e["data"]["errors"][0]["title"],
        "User's number is part of an experiment"
    );
    assert!(e["data"]["errors"][0]["detail"]
        .as_str()
        .unwrap()
        .starts_with("Failed to send message"));
    let e = only(
        events_for(&app, "whatsapp/status_failed_131047_reengagement.json").await,
        "131047",
    );
    assert_eq!(e["data"]["errors"][0]["code"], 131047);
    assert_eq!(e["data"]["recipient"]["id"], "16505551234");
}

#[tokio::test]
async fn every_whatsapp_fixture_yields_signed_events_and_no_fixture_is_left_out() {
    let app = spawn_app().await;
    // Account-level ones too: the first fixture channel is on their WABA.
    let mut names = fixture_names("whatsapp");
    names.extend(fixture_names("whatsapp/account"));
    for name in names {
        let events = events_for(&app, &name).await;
        assert!(!events.is_empty(), "{name} produced no event");
        for e in &events {
            assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{name}");
            assert!(
                e["type"].is_string() && e["timestamp"].is_string(),
                "{name}"
            );
            assert_eq!(e["tenant"], "acme");
        }
    }
}

#[tokio::test]
async fn webhook_id_header_equals_event_id_and_is_stable_across_redeliveries() {
    let app = spawn_app().await;
    let body = fixture("whatsapp/text.json");
    assert_eq!(app.post_meta(&body).await.status(), 200);
    app.forget_dedupe().await;
    assert_eq!(app.post_meta(&body).await.status(), 200);
    let reqs = app.crm_requests().await;
    assert_eq!(reqs.len(), 2);
    let ids: Vec<String> = reqs
        .iter()
        .map(|r| {
            r.headers
                .get("webhook-id")
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids[0], ids[1]);
    let body: Value = serde_json::from_slice(&reqs[0].body).unwrap();
    assert_eq!(body["id"], ids[0]);
}

#[tokio::test]
async fn redelivered_webhook_is_not_delivered_twice() {
    let app = spawn_app().await;
    let body = fixture("whatsapp/text.json");
    for _ in 0..3 {
        assert_eq!(app.post_meta(&body).await.status(), 200);
    }
    assert_eq!(app.crm_requests().await.len(), 1);
}

#[tokio::test]
async fn batched_entries_and_changes_give_one_event_each_in_order() {
    let app = spawn_app().await;
    let msg = |id: &str, text: &str| json!({"from": "16505551234", "id": id, "timestamp": "1749416383", "type": "text", "text": {"body": text}});
    let value = |msgs: Vec<Value>| {
        json!({"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena"}, "wa_id": "16505551234"}],
            "messages": msgs}})
    };
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [value(vec![msg("wamid.1", "one"), msg("wamid.2", "two")]), value(vec![msg("wamid.3", "three")])]},
        {"id": "2", "changes": [value(vec![msg("wamid.4", "four")])]}
    ]});
    let resp = app.post_meta(body.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
    let texts: Vec<String> = app
        .crm_events()
        .await
        .iter()
        .map(|e| e["data"]["message"]["text"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(texts, ["one", "two", "three", "four"]);
}

#[tokio::test]
async fn include_raw_tenant_gets_the_provider_object() {
    let app = TestApp::builder().include_raw().spawn().await;
    let e = only(events_for(&app, "whatsapp/text.json").await, "raw");
    assert_eq!(
        e["data"]["raw"]["text"]["body"],
        "Does it come in another color?"
    );
    assert_eq!(e["data"]["raw"]["type"], "text");
}

#[tokio::test]
async fn unknown_channel_is_acknowledged_counted_and_not_forwarded() {
    let app = spawn_app().await;
    let body = String::from_utf8(fixture("whatsapp/text.json"))
        .unwrap()
        .replace("106540352242922", "999999999");
    let resp = app.post_meta(body.as_bytes()).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["unroutable"], 1);
    assert!(app.crm_requests().await.is_empty());
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("switchboard_events_unroutable_total"));
}

#[tokio::test]
async fn each_tenant_receives_only_its_channels_events_signed_with_its_secret() {
    let app = spawn_app().await;
    app.put_channel(
        switchboard::channels::ChannelKind::Whatsapp,
        "555000111",
        "globex",
        "globex-token",
    )
    .await;
    let body = String::from_utf8(fixture("whatsapp/text.json"))
        .unwrap()
        .replace("106540352242922", "555000111");
    assert_eq!(app.post_meta(body.as_bytes()).await.status(), 200);
    assert!(app.crm_requests().await.is_empty());
    let reqs = app.crm_requests_at(OTHER_CRM_PATH).await;
    assert_eq!(reqs.len(), 1);
    let e = verify_standard_webhook(OTHER_SIGNING_SECRET, &reqs[0]);
    assert_eq!(e["tenant"], "globex");
}
