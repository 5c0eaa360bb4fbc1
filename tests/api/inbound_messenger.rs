//! Messenger webhooks (`object: page`) through the real HTTP endpoint to a real CRM
//! server: every fixture checked field by field.

use serde_json::{json, Value};
use switchboard::channels::ChannelKind;

use crate::helpers::*;
use crate::inbound_instagram::{events_of, only_event, spawn_meta_app};

pub const PAGE: &str = "682498302938465";
const PSID: &str = "6547891234567890";

fn assert_envelope(e: &Value, event_type: &str, name: &str) {
    assert_eq!(e["type"], event_type, "{name}: {e:#}");
    assert_eq!(e["tenant"], "acme", "{name}");
    assert_eq!(
        e["channel"],
        json!({"kind": "messenger", "id": PAGE}),
        "{name}"
    );
    assert!(e["id"].as_str().unwrap().starts_with("evt_"), "{name}");
}

#[tokio::test]
async fn every_messenger_fixture_is_normalized_field_by_field() {
    let app = spawn_meta_app(TestApp::builder()).await;

    // text with a quick reply: the chosen reply, like WhatsApp's interactive replies
    let e = only_event(&app, "messenger/text_quick_reply.json").await;
    assert_envelope(&e, "message.received", "quick_reply");
    assert_eq!(e["timestamp"], "2016-03-23T00:25:52.478Z");
    let d = &e["data"];
    assert_eq!(d["conversation"]["id"], PSID);
    assert_eq!(d["sender"]["id"], PSID);
    assert_eq!(d["message"]["id"], "mid.1457764197618:41d102a3e1ae206a38");
    assert_eq!(d["message"]["kind"], "interactive");
    assert_eq!(d["message"]["text"], "hello, world!");
    assert_eq!(d["message"]["interactive"]["type"], "quick_reply");
    assert_eq!(
        d["message"]["interactive"]["id"],
        "DEVELOPER_DEFINED_PAYLOAD"
    );
    assert_eq!(d["message"]["interactive"]["title"], "hello, world!");

    // reply to a message
    let e = only_event(&app, "messenger/text_reply_to.json").await;
    assert_envelope(&e, "message.received", "reply_to");
    let m = &e["data"]["message"];
    assert_eq!(m["kind"], "text");
    assert_eq!(m["text"], "hello, world!");
    assert_eq!(m["reply_to"], "m_1fTq8oLumEyIp3Q2MR-aY7IfLZDamVrALniheU");
    assert_eq!(m["reply_to_self"], false);

    // image attachment
    let cdn =
        "https://scontent.xx.fbcdn.net/v/t1.15752-9/123456789_n.jpg?_nc_cat=1&oh=abc&oe=66A0B1C2";
    let e = only_event(&app, "messenger/attachment_image.json").await;
    assert_envelope(&e, "message.received", "image");
    assert_eq!(e["timestamp"], "2018-02-12T23:46:35.308Z");
    let m = &e["data"]["message"];
    assert_eq!(m["id"], "mid.$cAAJdkrCd2ORnva8ErFhjGm0X_Q_c");
    assert_eq!(m["kind"], "image");
    assert_eq!(m["media"]["id"], cdn);
    assert_eq!(
        m["media"]["url"],
        format!(
            "http://relay.test/v1/media/messenger/{PAGE}/{}",
            switchboard::channels::urlencode_path_segment(cdn)
        )
    );

    // echo from this app: metadata and app id travel along
    let e = only_event(&app, "messenger/echo_text.json").await;
    assert_envelope(&e, "message.echo", "echo");
    assert_eq!(e["timestamp"], "2016-03-12T06:29:57.627Z");
    let d = &e["data"];
    assert_eq!(d["sender"]["id"], PAGE);
    assert_eq!(d["recipient"]["id"], PSID);
    assert_eq!(d["conversation"]["id"], PSID);
    assert_eq!(d["message"]["id"], "mid.1457764197618:41d102a3e1ae206a38");
    assert_eq!(d["message"]["text"], "hello, world!");
    assert_eq!(d["message"]["metadata"], "crm:outbound:8f14e45f");
    assert_eq!(d["message"]["app_id"], 1517776481860111u64);

    // delivery: one status per mid, with the watermark
    let e = only_event(&app, "messenger/delivery.json").await;
    assert_envelope(&e, "message.status", "delivery");
    assert_eq!(e["timestamp"], "2016-03-22T17:47:36.253Z");
    let d = &e["data"];
    assert_eq!(d["message"]["id"], "mid.1458668856218:ed81099e15d3f4f233");
    assert_eq!(d["status"], "delivered");
    assert_eq!(d["recipient"]["id"], PSID);
    assert_eq!(d["errors"], json!([]));
    assert_eq!(d["watermark"], 1458668856253i64);

    // read
    let e = only_event(&app, "messenger/read.json").await;
    assert_envelope(&e, "conversation.read", "read");
    assert_eq!(e["timestamp"], "2016-03-22T17:47:36.463Z");
    assert_eq!(e["data"]["conversation"]["id"], PSID);
    assert_eq!(e["data"]["watermark"], 1458668856253i64);
    assert!(e["data"].get("message").is_none());

    // reactions
    let e = only_event(&app, "messenger/reaction_react.json").await;
    assert_envelope(&e, "message.reaction", "react");
    let d = &e["data"];
    assert_eq!(d["message"]["id"], "mid.1458668856218:ed81099e15d3f4f233");
    assert_eq!(d["sender"]["id"], PSID);
    assert_eq!(d["emoji"], "❤️");
    assert_eq!(d["reaction"], "love");
    let e = only_event(&app, "messenger/reaction_unreact.json").await;
    assert_envelope(&e, "message.reaction", "unreact");
    assert_eq!(e["data"]["emoji"], "", "emoji is empty when removed");
    assert_eq!(e["data"]["action"], "unreact");
    assert_eq!(e["timestamp"], "2016-03-22T17:47:37.463Z");

    // postback with referral (Get Started from a link)
    let e = only_event(&app, "messenger/postback_get_started_referral.json").await;
    assert_envelope(&e, "postback", "postback");
    let d = &e["data"];
    assert_eq!(d["sender"]["id"], PSID);
    assert_eq!(d["conversation"]["id"], PSID);
    assert_eq!(d["payload"], "GET_STARTED");
    assert_eq!(d["title"], "Get Started");
    assert_eq!(d["message"]["id"], "m_1457764197618:41d102a3e1ae206a38");
    assert_eq!(d["referral"]["ref"], "spring_promo");
    assert_eq!(d["referral"]["source"], "SHORTLINK");

    // referral alone
    let e = only_event(&app, "messenger/referral_shortlink.json").await;
    assert_envelope(&e, "provider.event", "referral");
    assert_eq!(e["data"]["kind"], "referral");
    assert_eq!(e["data"]["conversation"]["id"], PSID);
    assert_eq!(
        e["data"]["referral"],
        json!({"ref": "spring_promo", "source": "SHORTLINK", "type": "OPEN_THREAD"})
    );
    assert_eq!(e["data"]["raw"]["referral"]["ref"], "spring_promo");

    // opt-in (seconds timestamp)
    let e = only_event(&app, "messenger/optin_checkbox.json").await;
    assert_envelope(&e, "provider.event", "optin");
    assert_eq!(e["timestamp"], "2009-02-13T23:31:30Z");
    assert_eq!(e["data"]["kind"], "optin");
    assert_eq!(e["data"]["optin"]["ref"], "PASS_THROUGH_PARAM");
    assert_eq!(e["data"]["optin"]["user_ref"], "REF_FROM_CHECKBOX_PLUGIN");
    assert_eq!(e["data"]["conversation"]["id"], PSID);

    // handover
    let e = only_event(&app, "messenger/handover_pass_thread_control.json").await;
    assert_envelope(&e, "provider.event", "handover");
    assert_eq!(e["data"]["kind"], "pass_thread_control");
    assert_eq!(e["data"]["conversation"]["id"], PSID);
    assert_eq!(
        e["data"]["pass_thread_control"]["new_owner_app_id"],
        "123456789"
    );
    assert_eq!(
        e["data"]["pass_thread_control"]["previous_owner_app_id"],
        "1517776481860111"
    );

    // standby: another app owns the thread; the normalized echo rides inside
    let e = only_event(&app, "messenger/standby_echo_template.json").await;
    assert_envelope(&e, "provider.event", "standby");
    assert_eq!(e["timestamp"], "2019-10-02T21:52:50.673Z");
    let d = &e["data"];
    assert_eq!(d["kind"], "standby");
    assert_eq!(d["conversation"]["id"], PSID);
    assert_eq!(d["event"]["type"], "message.echo");
    let m = &d["event"]["data"]["message"];
    assert_eq!(
        m["id"],
        "qT7ywaKpO9kkQR7Gv-nM8LIfLZDamVrALniheUYEDdHJXjDXEAyaS1xxONzb2Iv-DFzmTihfWJV012P5pK0AhQ"
    );
    assert_eq!(m["kind"], "template");
    assert_eq!(m["template"]["template_type"], "media");
    assert_eq!(m["app_id"], 1517776481860111u64);
    assert_eq!(d["raw"]["message"]["is_echo"], true);
}

#[tokio::test]
async fn every_messenger_fixture_yields_events_and_none_is_left_out() {
    let app = spawn_meta_app(TestApp::builder()).await;
    for name in fixture_names("messenger") {
        let events = events_of(&app, &fixture(&name)).await;
        assert_eq!(events.len(), 1, "{name}");
        assert_eq!(events[0]["channel"]["kind"], "messenger", "{name}");
    }
}

#[tokio::test]
async fn messenger_batch_of_several_pages_gives_one_event_each() {
    let app = spawn_meta_app(TestApp::builder()).await;
    let page2 = "100000000000002";
    app.put_channel(ChannelKind::Messenger, page2, "acme", "t2")
        .await;
    let msg = |page: &str, psid: &str, mid: &str, text: &str| {
        json!({"sender": {"id": psid}, "recipient": {"id": page}, "timestamp": 1458692752478i64,
               "message": {"mid": mid, "text": text}})
    };
    let body = json!({"object": "page", "entry": [
        {"id": PAGE, "time": 1, "messaging": [msg(PAGE, PSID, "m1", "one"), msg(PAGE, "777", "m2", "two")]},
        {"id": page2, "time": 1, "messaging": [msg(page2, PSID, "m3", "three")]},
        {"id": PAGE, "time": 1, "messaging": [
            {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "delivery": {"mids": ["m_a", "m_b"], "watermark": 1458668856253i64}}
        ]}
    ]});
    let events = events_of(&app, body.to_string().as_bytes()).await;
    assert_eq!(events.len(), 5);
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["channel"]["id"].as_str().unwrap().to_owned(),
                e["data"]["message"]["text"]
                    .as_str()
                    .or(e["data"]["message"]["id"].as_str())
                    .unwrap()
                    .to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            (page2.to_owned(), "three".to_owned()),
            (PAGE.to_owned(), "m_a".to_owned()),
            (PAGE.to_owned(), "m_b".to_owned()),
            (PAGE.to_owned(), "one".to_owned()),
            (PAGE.to_owned(), "two".to_owned()),
        ]
    );
    // Within one conversation the order is kept: the message, then its receipts.
    let of_psid: Vec<&str> = events
        .iter()
        .filter(|e| {
            e["channel"]["id"] == PAGE
                && (e["data"]["conversation"]["id"] == PSID || e["data"]["recipient"]["id"] == PSID)
        })
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        of_psid,
        ["message.received", "message.status", "message.status"]
    );
}

#[tokio::test]
async fn messenger_attachments_feed_comments_and_edits_are_normalized() {
    let app = spawn_meta_app(TestApp::builder()).await;
    let item = |inner: Value| {
        let mut m = json!({"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": 1458692752478i64});
        for (k, v) in inner.as_object().unwrap() {
            m[k] = v.clone();
        }
        json!({"object": "page", "entry": [{"id": PAGE, "time": 1, "messaging": [m]}]})
            .to_string()
            .into_bytes()
    };
    // sticker sent with its old image twin: the sticker wins
    let e = &events_of(
        &app,
        &item(json!({"message": {"mid": "m_s", "sticker_id": 369239263222822i64, "attachments": [
            {"type": "image", "payload": {"url": "https://scontent.xx/img.png", "sticker_id": 369239263222822i64}},
            {"type": "sticker", "payload": {"url": "https://scontent.xx/st.png", "sticker_id": 369239263222822i64}}
        ]}})),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["kind"], "sticker");
    assert_eq!(
        e["data"]["message"]["media"]["id"],
        "https://scontent.xx/st.png"
    );
    assert_eq!(e["data"]["message"]["sticker_id"], 369239263222822i64);
    assert_eq!(
        e["data"]["message"]["attachments"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    // location
    let e = &events_of(
        &app,
        &item(json!({"message": {"mid": "m_l", "attachments": [{"type": "location", "title": "Pinned",
            "url": "https://l.facebook.com/x", "payload": {"coordinates": {"lat": 52.52, "long": 13.405}}}]}})),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["kind"], "location");
    assert_eq!(e["data"]["message"]["location"]["latitude"], 52.52);
    assert_eq!(e["data"]["message"]["location"]["longitude"], 13.405);
    assert_eq!(e["data"]["message"]["location"]["name"], "Pinned");
    // a shared link (fallback): no media, the link
    let e = &events_of(
        &app,
        &item(json!({"message": {"mid": "m_f", "text": "look", "attachments": [{"type": "fallback", "title": "A page",
            "url": "https://example.com/a", "payload": null}]}})),
    )
    .await[0];
    assert_eq!(e["data"]["message"]["kind"], "share");
    assert_eq!(e["data"]["message"]["link"], "https://example.com/a");
    assert_eq!(e["data"]["message"]["text"], "look");
    assert!(e["data"]["message"].get("media").is_none());
    // message_edits
    let e = &events_of(
        &app,
        &item(json!({"message_edit": {"mid": "m_x", "text": "fixed", "num_edit": 1}})),
    )
    .await[0];
    assert_eq!(e["type"], "message.edited");
    assert_eq!(e["data"]["message"]["text"], "fixed");
    // delivery without mids: one status with the watermark
    let e = &events_of(
        &app,
        &item(json!({"delivery": {"watermark": 1458668856253i64}})),
    )
    .await;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0]["type"], "message.status");
    assert_eq!(e[0]["data"]["watermark"], 1458668856253i64);
    assert!(e[0]["data"].get("message").is_none());
    // take_thread_control, app_roles
    for (name, v) in [
        (
            "take_thread_control",
            json!({"previous_owner_app_id": "1", "metadata": "m"}),
        ),
        (
            "request_thread_control",
            json!({"requested_owner_app_id": "1"}),
        ),
    ] {
        let e = &events_of(&app, &item(json!({name: v}))).await[0];
        assert_eq!(e["type"], "provider.event");
        assert_eq!(e["data"]["kind"], name);
    }
    // a feed comment: comment.received; a feed like: provider.event
    let feed = |value: Value| {
        json!({"object": "page", "entry": [{"id": PAGE, "time": 1458692752, "changes": [{"field": "feed", "value": value}]}]})
            .to_string()
            .into_bytes()
    };
    let e = &events_of(
        &app,
        &feed(json!({"item": "comment", "verb": "add", "comment_id": "111_222", "post_id": "682498302938465_111",
            "parent_id": "682498302938465_111", "from": {"id": "999", "name": "Zoë Ångström"},
            "message": "Wie viel kostet das? 🤔", "created_time": 1458692752})),
    )
    .await[0];
    assert_eq!(e["type"], "comment.received");
    assert_eq!(e["channel"]["id"], PAGE);
    assert_eq!(e["timestamp"], "2016-03-23T00:25:52Z");
    let d = &e["data"];
    assert_eq!(d["comment"]["id"], "111_222");
    assert!(
        d["comment"].get("parent_id").is_none(),
        "a top-level comment"
    );
    assert_eq!(d["post"]["id"], "682498302938465_111");
    assert_eq!(d["sender"]["id"], "999");
    assert_eq!(d["sender"]["name"], "Zoë Ångström");
    assert_eq!(d["text"], "Wie viel kostet das? 🤔");
    let e = &events_of(
        &app,
        &feed(
            json!({"item": "reaction", "verb": "add", "post_id": "1_2", "reaction_type": "like"}),
        ),
    )
    .await[0];
    assert_eq!(e["type"], "provider.event");
    assert_eq!(e["data"]["kind"], "feed");
    assert_eq!(e["data"]["raw"]["reaction_type"], "like");
}

#[tokio::test]
async fn meta_subscription_check_reports_apps_and_missing_fields_and_subscribe_posts_them() {
    use switchboard::channels::meta::subscription;
    use switchboard::channels::ChannelRef;
    use wiremock::matchers::{body_json, header, method, path};
    use wiremock::{Mock, ResponseTemplate};

    let app = spawn_meta_app(TestApp::builder()).await;
    let live = app.state.live.load_full();
    let version = live.settings.meta.graph_api_version.clone();
    let apps_path = format!("/{version}/{PAGE}/subscribed_apps");
    Mock::given(method("GET"))
        .and(path(apps_path.as_str()))
        .and(header("authorization", "Bearer page-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "1517776481860111", "name": "Relay", "subscribed_fields": ["messages", "messaging_postbacks"]}
        ]})))
        .up_to_n_times(1)
        .mount(&app.graph)
        .await;
    let channel = ChannelRef::parse(ChannelKind::Messenger, PAGE).unwrap();
    let status = subscription::check(
        &app.state.store,
        &live.keyring,
        &live.settings.meta,
        &channel,
        None,
    )
    .await
    .unwrap();
    assert_eq!(status.object_id, PAGE);
    assert_eq!(status.apps.len(), 1);
    assert_eq!(status.apps[0].name.as_deref(), Some("Relay"));
    assert!(!status.is_complete());
    assert!(status.missing.contains(&"message_echoes".to_owned()));
    assert!(!status.missing.contains(&"messages".to_owned()));

    // subscribe: POST with every needed field (JSON body), then the status is read again
    let all = subscription::MESSENGER_FIELDS.join(",");
    Mock::given(method("POST"))
        .and(path(apps_path.as_str()))
        .and(body_json(json!({"subscribed_fields": all})))
        .and(header("authorization", "Bearer page-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"success": true})))
        .expect(1)
        .mount(&app.graph)
        .await;
    Mock::given(method("GET"))
        .and(path(apps_path.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"id": "1517776481860111", "name": "Relay", "subscribed_fields": subscription::MESSENGER_FIELDS}
        ]})))
        .mount(&app.graph)
        .await;
    let status = subscription::subscribe(
        &app.state.store,
        &live.keyring,
        &live.settings.meta,
        &channel,
        None,
    )
    .await
    .unwrap();
    assert!(status.is_complete(), "{status:?}");

    // a WABA: listed is enough; the object is not the channel id
    let waba = "102290129340398";
    Mock::given(method("GET"))
        .and(path(format!("/{version}/{waba}/subscribed_apps")))
        .and(header("authorization", "Bearer wa-token-secret"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [
            {"whatsapp_business_api_data": {"id": "67084308", "link": "https://www.facebook.com/games/?app_id=67084308", "name": "Relay"}}
        ]})))
        .mount(&app.graph)
        .await;
    let wa = ChannelRef::parse(ChannelKind::Whatsapp, "106540352242922").unwrap();
    let status = subscription::check(
        &app.state.store,
        &live.keyring,
        &live.settings.meta,
        &wa,
        Some(waba),
    )
    .await
    .unwrap();
    assert!(status.is_complete());
    assert_eq!(status.apps[0].id.as_deref(), Some("67084308"));

    // Graph errors are reported with Meta's code and message
    Mock::given(method("GET"))
        .and(path(format!(
            "/{version}/{IG}/subscribed_apps",
            IG = crate::inbound_instagram::IG_ACCOUNT
        )))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "Error validating access token", "type": "OAuthException", "code": 190}})))
        .mount(&app.graph)
        .await;
    let ig =
        ChannelRef::parse(ChannelKind::Instagram, crate::inbound_instagram::IG_ACCOUNT).unwrap();
    let err = subscription::check(
        &app.state.store,
        &live.keyring,
        &live.settings.meta,
        &ig,
        None,
    )
    .await
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("(190) Error validating access token"),
        "{err}"
    );
    // not a Meta channel
    let tg = ChannelRef::parse(ChannelKind::Telegram, "1").unwrap();
    assert!(subscription::check(
        &app.state.store,
        &live.keyring,
        &live.settings.meta,
        &tg,
        None
    )
    .await
    .is_err());
}
