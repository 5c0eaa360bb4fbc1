//! Instagram webhooks (`object: instagram`) through the real HTTP endpoint to a real CRM
//! server: every fixture checked field by field, signatures checked with the
//! `standardwebhooks` crate.

use serde_json::{json, Value};
use switchboard::channels::ChannelKind;

use crate::helpers::*;

pub const IG_ACCOUNT: &str = "17841405822304914";
const CUSTOMER: &str = "1254001234567890";

pub async fn spawn_meta_app(builder: TestAppBuilder) -> TestApp {
    let app = builder.spawn().await;
    app.put_channel(ChannelKind::Instagram, IG_ACCOUNT, "acme", "ig-page-token")
        .await;
    app.put_channel(
        ChannelKind::Messenger,
        crate::inbound_messenger::PAGE,
        "acme",
        "page-token",
    )
    .await;
    app
}

/// Sends one signed Meta body and returns the events the CRM received for it.
pub async fn events_of(app: &TestApp, body: &[u8]) -> Vec<Value> {
    app.forget_dedupe().await;
    let before = app.crm_requests().await.len();
    let resp = app.post_meta(body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let all = app.crm_requests().await;
    all[before..]
        .iter()
        .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
        .collect()
}

pub async fn only_event(app: &TestApp, name: &str) -> Value {
    let events = events_of(app, &fixture(name)).await;
    assert_eq!(events.len(), 1, "{name}: {events:#?}");
    events.into_iter().next().unwrap()
}

fn media_url(cdn: &str) -> String {
    format!(
        "http://relay.test/v1/media/instagram/{IG_ACCOUNT}/{}",
        switchboard::channels::urlencode_path_segment(cdn)
    )
}

/// The envelope every Instagram messaging event shares.
fn assert_envelope(e: &Value, event_type: &str, name: &str) {
    assert_eq!(e["type"], event_type, "{name}");
    assert_eq!(e["tenant"], "acme", "{name}");
    assert_eq!(
        e["channel"],
        json!({"kind": "instagram", "id": IG_ACCOUNT}),
        "{name}"
    );
    assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{name}");
}

#[tokio::test]
async fn every_instagram_fixture_is_normalized_field_by_field() {
    let app = spawn_meta_app(TestApp::builder()).await;

    // text
    let e = only_event(&app, "instagram/text.json").await;
    assert_envelope(&e, "message.received", "text");
    assert_eq!(e["timestamp"], "2019-09-23T18:14:45.349Z");
    let d = &e["data"];
    assert_eq!(d["conversation"]["id"], CUSTOMER);
    assert_eq!(d["sender"]["id"], CUSTOMER);
    assert!(d["message"]["id"]
        .as_str()
        .unwrap()
        .starts_with("aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjM0"));
    assert_eq!(d["message"]["kind"], "text");
    assert_eq!(d["message"]["text"], "Hi! Is this still available?");
    assert!(d.get("raw").is_none(), "raw only with include_raw");

    // image attachment: the CDN URL is the media id, relayed
    let cdn =
        "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17895000000000001&signature=AbCdEf";
    let e = only_event(&app, "instagram/attachment_image.json").await;
    assert_envelope(&e, "message.received", "image");
    let m = &e["data"]["message"];
    assert_eq!(
        m["id"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAAA1"
    );
    assert_eq!(m["kind"], "image");
    assert_eq!(m["media"]["id"], cdn);
    assert_eq!(m["media"]["url"], media_url(cdn));
    assert!(m["media"]["url"].as_str().unwrap().starts_with(
        "http://relay.test/v1/media/instagram/17841405822304914/https%3A%2F%2Flookaside"
    ));
    assert!(m.get("text").is_none());

    // story mention
    let cdn =
        "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17895000000000002&signature=GhIjKl";
    let e = only_event(&app, "instagram/story_mention.json").await;
    assert_envelope(&e, "message.received", "story_mention");
    assert_eq!(e["data"]["message"]["kind"], "story_mention");
    assert_eq!(e["data"]["message"]["media"]["id"], cdn);
    assert_eq!(e["data"]["message"]["media"]["url"], media_url(cdn));

    // story reply: text, and the story with its media relayed; emoji byte-exact
    let e = only_event(&app, "instagram/story_reply.json").await;
    assert_envelope(&e, "message.received", "story_reply");
    let m = &e["data"]["message"];
    assert_eq!(m["kind"], "text");
    assert_eq!(m["text"], "Love this! 🔥");
    assert_eq!(m["story"]["id"], "17936100000000003");
    let story_cdn =
        "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=17936100000000003&signature=MnOpQr";
    assert_eq!(m["story"]["media"]["id"], story_cdn);
    assert_eq!(m["story"]["media"]["url"], media_url(story_cdn));
    assert!(m.get("reply_to").is_none());

    // reply to a message
    let e = only_event(&app, "instagram/reply_to_message.json").await;
    assert_envelope(&e, "message.received", "reply");
    assert_eq!(e["data"]["message"]["text"], "That sounds great");
    assert_eq!(
        e["data"]["message"]["reply_to"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAAA1"
    );

    // echo: the business is the sender, the customer the conversation and recipient
    let e = only_event(&app, "instagram/echo.json").await;
    assert_envelope(&e, "message.echo", "echo");
    let d = &e["data"];
    assert_eq!(d["conversation"]["id"], CUSTOMER);
    assert_eq!(d["sender"]["id"], IG_ACCOUNT);
    assert_eq!(d["recipient"]["id"], CUSTOMER);
    assert_eq!(d["message"]["kind"], "text");
    assert_eq!(d["message"]["text"], "Thanks for reaching out!");
    assert_eq!(
        d["message"]["id"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAAA9"
    );

    // reactions: react and unreact
    let e = only_event(&app, "instagram/reaction_react.json").await;
    assert_envelope(&e, "message.reaction", "react");
    let d = &e["data"];
    assert_eq!(
        d["message"]["id"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAAA9"
    );
    assert_eq!(d["sender"]["id"], CUSTOMER);
    assert_eq!(d["conversation"]["id"], CUSTOMER);
    assert_eq!(d["emoji"], "❤️");
    assert_eq!(d["reaction"], "love");
    assert_eq!(d["action"], "react");
    let react_id = e["id"].clone();
    let e = only_event(&app, "instagram/reaction_unreact.json").await;
    assert_envelope(&e, "message.reaction", "unreact");
    assert_eq!(e["data"]["emoji"], "");
    assert_eq!(e["data"]["action"], "unreact");
    assert_eq!(e["data"]["sender"]["id"], CUSTOMER);
    assert_ne!(e["id"], react_id, "react and unreact are two events");

    // seen
    let e = only_event(&app, "instagram/seen.json").await;
    assert_envelope(&e, "conversation.read", "seen");
    assert_eq!(e["data"]["conversation"]["id"], CUSTOMER);
    assert_eq!(
        e["data"]["message"]["id"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAAA9"
    );
    assert_eq!(e["timestamp"], "2019-09-23T18:14:45.349Z");

    // postbacks (ice breakers), with and without an ig.me referral
    let e = only_event(&app, "instagram/postback_icebreaker.json").await;
    assert_envelope(&e, "postback", "postback");
    let d = &e["data"];
    assert_eq!(d["payload"], "ICEBREAKER_TRACK_ORDER");
    assert_eq!(d["title"], "Track my order");
    assert_eq!(d["sender"]["id"], CUSTOMER);
    assert_eq!(d["conversation"]["id"], CUSTOMER);
    assert_eq!(
        d["message"]["id"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAA11"
    );
    assert!(d.get("referral").is_none());
    let e = only_event(&app, "instagram/postback_icebreaker_igme_referral.json").await;
    assert_envelope(&e, "postback", "postback_ref");
    assert_eq!(e["timestamp"], "2017-08-16T17:52:56.377Z");
    let d = &e["data"];
    assert_eq!(d["payload"], "ICEBREAKER_HOURS");
    assert_eq!(d["title"], "What are your opening hours?");
    assert_eq!(
        d["referral"],
        json!({"ref": "summer_sale", "source": "SHORTLINKS", "type": "OPEN_THREAD"})
    );

    // a referral on its own (ig.me link): provider.event naming it, raw included
    let e = only_event(&app, "instagram/referral_igme.json").await;
    assert_envelope(&e, "provider.event", "referral");
    let d = &e["data"];
    assert_eq!(d["kind"], "referral");
    assert_eq!(d["conversation"]["id"], CUSTOMER);
    assert_eq!(d["sender"]["id"], CUSTOMER);
    assert_eq!(d["referral"]["ref"], "summer_sale");
    assert_eq!(d["raw"]["referral"]["source"], "SHORTLINKS");
    assert_eq!(d["raw"]["sender"]["id"], CUSTOMER);

    // unsent message
    let e = only_event(&app, "instagram/unsend_deleted.json").await;
    assert_envelope(&e, "message.deleted", "unsend");
    assert_eq!(
        e["data"]["message"]["id"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAAA1"
    );
    assert_eq!(e["data"]["sender"]["id"], CUSTOMER);
    assert_eq!(e["data"]["conversation"]["id"], CUSTOMER);

    // unsupported: still delivered, with the raw item
    let e = only_event(&app, "instagram/unsupported.json").await;
    assert_envelope(&e, "message.received", "unsupported");
    assert_eq!(e["data"]["message"]["kind"], "unsupported");
    assert_eq!(
        e["data"]["message"]["id"],
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAA10"
    );
    assert_eq!(e["data"]["raw"]["message"]["is_unsupported"], true);

    // comments: comment.received, text byte-exact
    let e = only_event(&app, "instagram/comments_change.json").await;
    assert_envelope(&e, "comment.received", "comment");
    assert_eq!(e["timestamp"], "2019-09-23T18:14:46.134Z");
    let d = &e["data"];
    assert_eq!(d["comment"]["id"], "17865799348089039");
    assert_eq!(d["post"]["id"], "17887498072083520");
    assert_eq!(d["post"]["media_product_type"], "FEED");
    assert_eq!(d["sender"]["id"], CUSTOMER);
    assert_eq!(d["sender"]["username"], "jane.doe");
    assert_eq!(d["text"], "Quanto custa? 😍");
    assert_eq!(d["source"], "comments");

    // mentions: the ids Meta sends
    let e = only_event(&app, "instagram/mentions_change.json").await;
    assert_envelope(&e, "comment.received", "mention");
    let d = &e["data"];
    assert_eq!(d["comment"]["id"], "17894227972186120");
    assert_eq!(d["post"]["id"], "17918195224117851");
    assert_eq!(d["mention"], true);
}

#[tokio::test]
async fn every_instagram_fixture_yields_events_and_none_is_left_out() {
    let app = spawn_meta_app(TestApp::builder()).await;
    for name in fixture_names("instagram") {
        let events = events_of(&app, &fixture(&name)).await;
        assert_eq!(events.len(), 1, "{name}");
        for e in &events {
            assert_eq!(e["channel"]["kind"], "instagram", "{name}");
            assert!(e["timestamp"].as_str().unwrap().ends_with('Z'), "{name}");
        }
    }
}

#[tokio::test]
async fn instagram_batch_of_several_accounts_and_items_gives_one_event_each_in_order() {
    let app = spawn_meta_app(TestApp::builder()).await;
    let other = "17841400000000002";
    app.put_channel(ChannelKind::Instagram, other, "globex", "t2")
        .await;
    let item = |account: &str, mid: &str, text: &str| {
        json!({"sender": {"id": CUSTOMER}, "recipient": {"id": account},
               "timestamp": 1569262485349i64, "message": {"mid": mid, "text": text}})
    };
    let body = json!({"object": "instagram", "entry": [
        {"id": IG_ACCOUNT, "time": 1, "messaging": [item(IG_ACCOUNT, "m1", "one"), item(IG_ACCOUNT, "m2", "two")]},
        {"id": other, "time": 1, "messaging": [item(other, "m3", "three")]},
        {"id": IG_ACCOUNT, "time": 1, "messaging": [item(IG_ACCOUNT, "m4", "four")],
         "changes": [{"field": "comments", "value": {"id": "c1", "from": {"id": "5", "username": "u"}, "text": "five", "media": {"id": "p1"}}}]}
    ]});
    let resp = app.post_meta(body.to_string().as_bytes()).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["events"], 5);
    assert_eq!(v["delivered"], 5);
    let events = app.crm_events().await;
    assert_eq!(events.len(), 4);
    // One conversation's messages keep their order; the comment stands alone.
    let texts: Vec<&str> = events
        .iter()
        .filter_map(|e| e["data"]["message"]["text"].as_str())
        .collect();
    assert_eq!(texts, ["one", "two", "four"]);
    let comments: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "comment.received")
        .collect();
    assert_eq!(comments.len(), 1);
    assert_eq!(comments[0]["data"]["text"], "five");
    let globex = app.wait_for_crm(OTHER_CRM_PATH, 1).await;
    assert_eq!(globex.len(), 1);
    let e = verify_standard_webhook(OTHER_SIGNING_SECRET, &globex[0]);
    assert_eq!(e["channel"]["id"], other);
    assert_eq!(e["tenant"], "globex");
    assert_eq!(e["data"]["message"]["text"], "three");
}

#[tokio::test]
async fn escaped_unicode_from_meta_arrives_byte_exact() {
    let app = spawn_meta_app(TestApp::builder()).await;
    // Meta escapes non-ASCII (and '/') in the bytes it signs.
    let body = format!(
        r#"{{"object":"instagram","entry":[{{"id":"{IG_ACCOUNT}","time":1,"messaging":[{{"sender":{{"id":"{CUSTOMER}"}},"recipient":{{"id":"{IG_ACCOUNT}"}},"timestamp":1569262485349,"message":{{"mid":"m_u","text":"Ol\u00e1 \u00e4\u00f6\u00e5 \ud83d\ude0d \u4f60\u597d a\/b"}}}}]}}]}}"#
    );
    let events = events_of(&app, body.as_bytes()).await;
    assert_eq!(events[0]["data"]["message"]["text"], "Olá äöå 😍 你好 a/b");
    let raw = &app.crm_requests().await[0].body;
    let needle = "Olá äöå 😍 你好 a/b".as_bytes();
    assert!(
        raw.windows(needle.len()).any(|w| w == needle),
        "the CRM body carries the text as UTF-8"
    );
}

#[tokio::test]
async fn instagram_include_raw_tenant_gets_the_messaging_item() {
    let app = spawn_meta_app(TestApp::builder().include_raw()).await;
    let e = only_event(&app, "instagram/text.json").await;
    assert_eq!(
        e["data"]["raw"]["message"]["text"],
        "Hi! Is this still available?"
    );
    assert_eq!(e["data"]["raw"]["recipient"]["id"], IG_ACCOUNT);
}

#[tokio::test]
async fn instagram_edits_attachments_and_unknown_items_are_normalized() {
    let app = spawn_meta_app(TestApp::builder()).await;
    let item = |inner: Value| {
        let mut m = json!({"sender": {"id": CUSTOMER}, "recipient": {"id": IG_ACCOUNT}, "timestamp": 1569262485349i64});
        for (k, v) in inner.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": 1, "messaging": [m]}]})
            .to_string()
            .into_bytes()
    };
    // message_edit → message.edited
    let e = &events_of(
        &app,
        &item(json!({"message_edit": {"mid": "m_e", "text": "new text", "num_edit": 2}})),
    )
    .await[0];
    assert_eq!(e["type"], "message.edited");
    assert_eq!(e["data"]["message"]["id"], "m_e");
    assert_eq!(e["data"]["message"]["text"], "new text");
    assert_eq!(e["data"]["message"]["kind"], "text");
    assert_eq!(e["data"]["message"]["edit_count"], 2);
    assert_eq!(e["data"]["sender"]["id"], CUSTOMER);

    // every attachment type
    for (ty, kind) in [
        ("video", "video"),
        ("audio", "audio"),
        ("file", "document"),
        ("share", "share"),
        ("ig_reel", "reel"),
        ("reel", "reel"),
        ("ig_post", "post"),
        ("something_new", "unsupported"),
    ] {
        let cdn = format!("https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id={ty}");
        let body = item(json!({"message": {"mid": format!("m_{ty}"),
            "attachments": [{"type": ty, "payload": {"url": cdn, "title": "T"}}]}}));
        let e = &events_of(&app, &body).await[0];
        assert_eq!(e["type"], "message.received", "{ty}");
        assert_eq!(e["data"]["message"]["kind"], kind, "{ty}");
        assert_eq!(e["data"]["message"]["media"]["id"], cdn.as_str(), "{ty}");
        assert_eq!(
            e["data"]["message"]["media"]["url"],
            media_url(&cdn),
            "{ty}"
        );
        if kind == "unsupported" {
            assert_eq!(e["data"]["message"]["provider_type"], ty);
            assert!(e["data"]["raw"].is_object(), "unsupported carries raw");
        }
    }
    // quick reply
    let e = &events_of(
        &app,
        &item(json!({"message": {"mid": "m_q", "text": "Yes", "quick_reply": {"payload": "YES_PAYLOAD"}}})),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["kind"], "interactive");
    assert_eq!(e["data"]["message"]["text"], "Yes");
    assert_eq!(
        e["data"]["message"]["interactive"],
        json!({"type": "quick_reply", "id": "YES_PAYLOAD", "title": "Yes"})
    );
    // ad referral on a message
    let e = &events_of(
        &app,
        &item(json!({"message": {"mid": "m_ad", "text": "Hi", "referral": {"ref": "r", "ad_id": "123", "source": "ADS", "type": "OPEN_THREAD"}}})),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["referral"]["ad_id"], "123");
    // an item of a kind nobody documented yet
    let e = &events_of(&app, &item(json!({"brand_new_thing": {"x": 1}}))).await[0];
    assert_eq!(e["type"], "provider.event");
    assert_eq!(e["data"]["kind"], "brand_new_thing");
    assert_eq!(e["data"]["conversation"]["id"], CUSTOMER);
    assert_eq!(e["data"]["raw"]["brand_new_thing"]["x"], 1);
    // an unknown `changes` field
    let body = json!({"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": 1569262486134i64,
        "changes": [{"field": "story_insights", "value": {"media_id": "1", "impressions": 4}}]}]});
    let e = &events_of(&app, body.to_string().as_bytes()).await[0];
    assert_eq!(e["type"], "provider.event");
    assert_eq!(e["data"]["kind"], "story_insights");
    assert_eq!(e["data"]["raw"]["impressions"], 4);
    assert_eq!(e["channel"]["id"], IG_ACCOUNT);
}

#[tokio::test]
async fn instagram_redelivery_is_not_delivered_twice_but_unsend_after_receipt_is() {
    let app = spawn_meta_app(TestApp::builder()).await;
    let image = fixture("instagram/attachment_image.json");
    for _ in 0..2 {
        assert_eq!(app.post_meta(&image).await.status(), 200);
    }
    assert_eq!(app.crm_requests().await.len(), 1);
    // the unsend of the same mid is a new event
    assert_eq!(
        app.post_meta(&fixture("instagram/unsend_deleted.json"))
            .await
            .status(),
        200
    );
    let events = app.crm_events().await;
    assert_eq!(events.len(), 2);
    assert_eq!(events[1]["type"], "message.deleted");
}
