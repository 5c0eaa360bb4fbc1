//! WhatsApp account-level webhooks (about a WABA, no phone_number_id): each tenant with
//! a channel on the WABA gets the event once, on its numerically smallest channel there;
//! `message_template_status_update` as `template.status`, the others `provider.event`.
//! Real relay, real Redis, real CRM servers; Meta's own examples as bodies.

use serde_json::Value;
use switchboard::channels::ChannelKind;

use crate::helpers::*;

/// Posts `body` and returns (the relay's answer, events at acme, events at globex) that
/// arrived for it.
async fn post(app: &TestApp, body: &[u8]) -> (Value, Vec<Value>, Vec<Value>) {
    let (a0, g0) = (
        app.crm_requests().await.len(),
        app.crm_requests_at(OTHER_CRM_PATH).await.len(),
    );
    let resp = app.post_meta(body).await;
    assert_eq!(resp.status(), 200);
    let answer: Value = resp.json().await.unwrap();
    let acme = app.crm_requests().await[a0..]
        .iter()
        .map(|r| verify_standard_webhook(SIGNING_SECRET, r))
        .collect();
    let globex = app.crm_requests_at(OTHER_CRM_PATH).await[g0..]
        .iter()
        .map(|r| verify_standard_webhook(OTHER_SIGNING_SECRET, r))
        .collect();
    (answer, acme, globex)
}

async fn put_on_waba(app: &TestApp, id: &str, tenant: &str, waba: &str) {
    let new = NewChannel {
        waba_id: Some(waba),
        ..NewChannel::new(tenant, "wa-token")
    };
    app.put(ChannelKind::Whatsapp, id, &new).await;
}

#[tokio::test]
async fn a_template_status_reaches_the_tenant_of_the_waba_as_template_status() {
    let app = spawn_app().await;
    let (_, acme, globex) = post(
        &app,
        &fixture("whatsapp/account/template_status_approved.json"),
    )
    .await;
    assert!(globex.is_empty());
    assert_eq!(acme.len(), 1, "{acme:#?}");
    let e = &acme[0];
    assert_eq!(e["type"], "template.status");
    assert_eq!(e["channel"]["kind"], "whatsapp");
    assert_eq!(e["channel"]["id"], WHATSAPP_FIXTURE_CHANNELS[0]);
    assert_eq!(e["timestamp"], "2025-06-30T01:39:08Z", "entry.time");
    let d = &e["data"];
    assert_eq!(d["waba_id"], FIXTURE_WABA);
    // Meta sends the template id as a number; the contract's ids are strings.
    assert_eq!(d["template"]["id"], "1689556908129832");
    assert_eq!(d["template"]["name"], "order_confirmation");
    assert_eq!(d["template"]["language"], "en-US");
    assert_eq!(d["status"], "APPROVED");
    assert_eq!(d["reason"], "NONE");
    assert!(d.get("raw").is_none(), "raw only with include_raw");
}

#[tokio::test]
async fn each_tenant_on_the_waba_gets_it_once_on_its_smallest_channel_with_its_own_id() {
    let app = spawn_app().await;
    put_on_waba(&app, "2000000000000000", "acme", FIXTURE_WABA).await;
    put_on_waba(&app, "900", "globex", FIXTURE_WABA).await;
    // 80 < 900 as numbers (not as text).
    put_on_waba(&app, "80", "globex", FIXTURE_WABA).await;
    put_on_waba(&app, "81", "globex", "another-waba").await;
    let body = fixture("whatsapp/account/phone_number_quality_update.json");
    let (_, acme, globex) = post(&app, &body).await;
    assert_eq!((acme.len(), globex.len()), (1, 1), "{acme:#?} {globex:#?}");
    assert_eq!(acme[0]["channel"]["id"], WHATSAPP_FIXTURE_CHANNELS[0]);
    assert_eq!(globex[0]["channel"]["id"], "80");
    assert_eq!(globex[0]["tenant"], "globex");
    assert_ne!(acme[0]["id"], globex[0]["id"], "an id per tenant");
    for e in [&acme[0], &globex[0]] {
        assert_eq!(e["type"], "provider.event");
        assert_eq!(e["timestamp"], "2025-05-28T17:46:34Z", "entry.time");
        assert_eq!(e["data"]["field"], "phone_number_quality_update");
        assert_eq!(e["data"]["kind"], "phone_number_quality_update");
        assert_eq!(e["data"]["waba_id"], FIXTURE_WABA);
        assert_eq!(e["data"]["raw"]["event"], "THROUGHPUT_UPGRADE");
    }

    // A redelivery: the same ids, already accepted by both CRMs.
    let (answer, acme2, globex2) = post(&app, &body).await;
    assert!(acme2.is_empty() && globex2.is_empty());
    assert_eq!(answer["duplicates"], 2, "{answer}");
    app.forget_dedupe().await;
    let (_, acme3, globex3) = post(&app, &body).await;
    assert_eq!(acme3[0]["id"], acme[0]["id"], "deterministic");
    assert_eq!(globex3[0]["id"], globex[0]["id"], "deterministic");
}

#[tokio::test]
async fn a_channel_another_service_wrote_straight_into_redis_is_found_by_its_waba_id() {
    let app = spawn_app().await;
    redis_cli(
        app.redis().port,
        &[
            "HSET",
            "switchboard:channel:whatsapp:777000",
            "tenant",
            "globex",
            "token",
            "gAAAAA-not-read-here",
            "waba_id",
            "555666777",
        ],
    );
    let body = String::from_utf8(fixture("whatsapp/account/account_update_violation.json"))
        .unwrap()
        .replace(FIXTURE_WABA, "555666777");
    let (_, acme, globex) = post(&app, body.as_bytes()).await;
    assert!(acme.is_empty());
    assert_eq!(globex.len(), 1);
    assert_eq!(globex[0]["channel"]["id"], "777000");
    assert_eq!(globex[0]["data"]["field"], "account_update");
    assert_eq!(
        globex[0]["data"]["raw"]["violation_info"]["violation_type"],
        "ADULT"
    );

    // A channel the relay writes is routed at once, cache or not.
    put_on_waba(&app, "777001", "acme", "555666777").await;
    let body = body.replace("1743451903", "1743451999");
    let (_, acme, globex) = post(&app, body.as_bytes()).await;
    assert_eq!((acme.len(), globex.len()), (1, 1));
    assert_eq!(acme[0]["channel"]["id"], "777001");
}

#[tokio::test]
async fn a_waba_no_channel_names_is_unroutable_counted_and_answered_200() {
    let app = spawn_app().await;
    let body = String::from_utf8(fixture("whatsapp/account/template_quality_update.json"))
        .unwrap()
        .replace(FIXTURE_WABA, "424242");
    let (answer, acme, globex) = post(&app, body.as_bytes()).await;
    assert_eq!(answer["unroutable"], 1, "{answer}");
    assert!(acme.is_empty() && globex.is_empty());

    // On the fixtures' WABA the quality update is a provider.event named by its field.
    let (_, acme, _) = post(
        &app,
        &fixture("whatsapp/account/template_quality_update.json"),
    )
    .await;
    assert_eq!(acme.len(), 1);
    assert_eq!(acme[0]["type"], "provider.event");
    assert_eq!(acme[0]["data"]["field"], "message_template_quality_update");
    assert_eq!(acme[0]["data"]["raw"]["new_quality_score"], "YELLOW");
}

#[tokio::test]
async fn a_channel_another_service_adds_to_a_waba_later_is_found_within_the_cache_time() {
    let app = spawn_app().await;
    let body = |time: u64| {
        String::from_utf8(fixture("whatsapp/account/account_update_violation.json"))
            .unwrap()
            .replace(FIXTURE_WABA, "888777666")
            .replace("1743451903", &time.to_string())
    };
    // The lookup is cached now: the WABA has no channel.
    let (answer, _, _) = post(&app, body(1).as_bytes()).await;
    assert_eq!(answer["unroutable"], 1);
    redis_cli(
        app.redis().port,
        &[
            "HSET",
            "switchboard:channel:whatsapp:888000",
            "tenant",
            "globex",
            "token",
            "gAAAAA-not-read-here",
            "waba_id",
            "888777666",
        ],
    );
    // Seen once the cached copy is older than store.channel_cache_ms.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    for time in 2.. {
        let (_, _, globex) = post(&app, body(time).as_bytes()).await;
        if let Some(e) = globex.first() {
            assert_eq!(e["channel"]["id"], "888000");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "never routed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
