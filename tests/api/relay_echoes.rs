//! Echoes of the relay's own sends (contract v2): a Messenger or Instagram reply sent
//! through `POST /v1/messages` comes back from Meta as `message.echo`; the CRM gets it
//! with `data.sent_by_relay = true`, and an echo of anything else with `false`. The
//! sends go to a wiremock Graph API that answers with the message id of the echo
//! fixture, and the echoes are signed as Meta signs them.

use secrecy::SecretString;
use serde_json::{json, Value};
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::store::{ChannelRecord, StoreBackend};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;

const PAGE: &str = "682498302938465";
const OTHER_PAGE: &str = "682498302938466";
const PSID: &str = "6547891234567890";
const PAGE_MID: &str = "mid.1457764197618:41d102a3e1ae206a38";
const IG: &str = "17841405822304914";
const IGSID: &str = "1254001234567890";
const IG_MID: &str = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMyAAA9";

async fn mount_send(server: &MockServer, p: &str, recipient: &str, mid: &str) {
    Mock::given(method("POST"))
        .and(path(p))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"recipient_id": recipient, "message_id": mid})),
        )
        .mount(server)
        .await;
}

async fn send_text(app: &TestApp, kind: &str, channel: &str, to: &str) -> Value {
    let resp = app
        .http
        .post(app.url("/v1/messages"))
        .bearer_auth(API_KEY)
        .json(&json!({"channel": {"kind": kind, "id": channel}, "to": to,
                      "message": {"kind": "text", "text": "hello, world!"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    resp.json().await.unwrap()
}

/// The echo fixture, with its message id replaced by `mid`.
fn echo(name: &str, fixture_mid: &str, mid: &str) -> Vec<u8> {
    let text = String::from_utf8(fixture(name)).unwrap();
    assert!(text.contains(fixture_mid), "{name}");
    text.replace(fixture_mid, mid).into_bytes()
}

/// Posts a Meta webhook and returns the events the CRM received for it.
async fn echo_events(app: &TestApp, body: &[u8]) -> Vec<Value> {
    let before = app.crm_requests().await.len();
    let resp = app.post_meta(body).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    app.crm_requests().await[before..]
        .iter()
        .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
        .collect()
}

async fn only_echo(app: &TestApp, body: &[u8]) -> Value {
    let events = echo_events(app, body).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    let e = events.into_iter().next().unwrap();
    assert_eq!(e["type"], "message.echo", "{e:#}");
    e
}

async fn messenger_round_trip(app: &TestApp) {
    app.put_channel(ChannelKind::Messenger, PAGE, "acme", "page-token")
        .await;
    mount_send(
        &app.graph,
        &format!("/v23.0/{PAGE}/messages"),
        PSID,
        PAGE_MID,
    )
    .await;
    let answer = send_text(app, "messenger", PAGE, PSID).await;
    assert_eq!(answer["id"], PAGE_MID);

    let fixture_name = "messenger/echo_text.json";
    let e = only_echo(app, &fixture(fixture_name)).await;
    assert_eq!(e["data"]["message"]["id"], PAGE_MID);
    assert_eq!(e["data"]["sent_by_relay"], true, "{e:#}");

    // What the business sent from the Page inbox: never sent through the relay.
    let other = echo(
        fixture_name,
        PAGE_MID,
        "mid.1457764197618:0000000000000000aa",
    );
    let e = only_echo(app, &other).await;
    assert_eq!(e["data"]["sent_by_relay"], false, "{e:#}");

    // The same message id echoed on another Page: the relay did not send it there.
    app.put_channel(ChannelKind::Messenger, OTHER_PAGE, "acme", "t")
        .await;
    let other_page = String::from_utf8(fixture(fixture_name))
        .unwrap()
        .replace(PAGE, OTHER_PAGE);
    let e = only_echo(app, other_page.as_bytes()).await;
    assert_eq!(e["channel"]["id"], OTHER_PAGE);
    assert_eq!(e["data"]["sent_by_relay"], false, "{e:#}");

    crate::event_schema::assert_events_match_schema(&app.crm_events().await);
}

#[tokio::test]
async fn messenger_echo_of_a_relay_send_is_marked_and_others_are_not() {
    let app = spawn_app().await;
    messenger_round_trip(&app).await;

    // Kept in Redis with the dedupe window as TTL, the message id only hashed.
    let (dump, ttls) = app.redis().dump_with_ttls();
    let sent: Vec<&(String, i64)> = ttls
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("switchboard:sent:messenger:{PAGE}:")))
        .collect();
    assert_eq!(sent.len(), 1, "{ttls:?}");
    assert!(sent[0].1 > 0 && sent[0].1 <= 86_400_000, "PTTL: {sent:?}");
    assert!(!dump.contains(PAGE_MID), "the message id is hashed");
    assert!(!dump.contains("hello, world!"), "no content");
}

#[tokio::test]
async fn the_echo_mark_is_read_in_the_dedupe_mget_with_no_extra_round_trip() {
    let app = spawn_app().await;
    app.put_channel(ChannelKind::Messenger, PAGE, "acme", "page-token")
        .await;
    mount_send(
        &app.graph,
        &format!("/v23.0/{PAGE}/messages"),
        PSID,
        PAGE_MID,
    )
    .await;
    send_text(&app, "messenger", PAGE, PSID).await;
    // Warm the routing cache, then count what one echo costs.
    only_echo(
        &app,
        &echo("messenger/echo_text.json", PAGE_MID, "mid.warm"),
    )
    .await;
    app.redis().cli(&["CONFIG", "RESETSTAT"]);
    let e = only_echo(&app, &fixture("messenger/echo_text.json")).await;
    assert_eq!(e["data"]["sent_by_relay"], true);
    let stats = app.redis().cli(&["INFO", "commandstats"]);
    let calls = |cmd: &str| -> u64 {
        stats
            .lines()
            .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
            .and_then(|rest| rest.split(',').next())
            .map_or(0, |n| n.parse().unwrap())
    };
    assert_eq!(calls("mget"), 1, "{stats}");
    // The fallback (a Cluster, the memory store) would read the mark with EXISTS.
    assert_eq!(calls("exists"), 0, "{stats}");
}

#[tokio::test]
async fn the_echo_mark_works_on_the_memory_store_too() {
    let app = TestApp::builder().memory().spawn().await;
    messenger_round_trip(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_echo_mark_works_on_a_redis_cluster_too() {
    // The mark's key lands on any slot: read on its own there.
    let cluster = RedisCluster::start(3);
    let app = TestApp::builder().cluster(cluster.urls()).spawn().await;
    messenger_round_trip(&app).await;
}

#[tokio::test]
async fn a_buffered_echo_keeps_its_mark() {
    let app = spawn_app().await;
    app.put_channel(ChannelKind::Messenger, PAGE, "acme", "page-token")
        .await;
    mount_send(
        &app.graph,
        &format!("/v23.0/{PAGE}/messages"),
        PSID,
        PAGE_MID,
    )
    .await;
    send_text(&app, "messenger", PAGE, PSID).await;
    app.crm_fails_once().await;
    let resp = app.post_meta(&fixture("messenger/echo_text.json")).await;
    assert_eq!(resp.status(), 200);
    let reqs = app.wait_for_crm(CRM_PATH, 2).await;
    assert_eq!(
        reqs.len(),
        2,
        "one failed attempt, then the buffered delivery"
    );
    for r in &reqs {
        let e = verify_standard_webhook(SIGNING_SECRET, r);
        assert_eq!(e["data"]["sent_by_relay"], true, "{e:#}");
    }
}

#[tokio::test]
async fn instagram_login_echo_of_a_relay_send_is_marked_and_others_are_not() {
    let ig = MockServer::start().await;
    let app = TestApp::builder()
        .toml(&format!("[instagram]\ngraph_base = \"{}\"\n", ig.uri()))
        .spawn()
        .await;
    // An Instagram Login channel: its replies go to graph.instagram.com.
    let record = ChannelRecord {
        tenant: "acme".into(),
        token: SecretString::from(app.keyring.encrypt(b"IGAAT-login-token")),
        graph: Some("instagram".into()),
        ..Default::default()
    };
    app.state
        .store
        .put_channel(
            &ChannelRef::parse(ChannelKind::Instagram, IG).unwrap(),
            &record,
        )
        .await
        .unwrap();
    mount_send(&ig, "/v23.0/me/messages", IGSID, IG_MID).await;
    let answer = send_text(&app, "instagram", IG, IGSID).await;
    assert_eq!(answer["id"], IG_MID);

    let e = only_echo(&app, &fixture("instagram/echo.json")).await;
    assert_eq!(e["channel"], json!({"kind": "instagram", "id": IG}));
    assert_eq!(e["data"]["sent_by_relay"], true, "{e:#}");

    let other = echo(
        "instagram/echo.json",
        IG_MID,
        "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1ODIyMzA0OTE0OjMzAAA9",
    );
    let e = only_echo(&app, &other).await;
    assert_eq!(e["data"]["sent_by_relay"], false, "{e:#}");

    // Nothing but echoes carries the mark.
    let events = echo_events(&app, &fixture("instagram/text.json")).await;
    assert!(events
        .iter()
        .all(|e| e["data"].get("sent_by_relay").is_none()));
    crate::event_schema::assert_events_match_schema(&app.crm_events().await);
}
