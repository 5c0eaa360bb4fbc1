//! `delivery.max_buffered_per_tenant`: during a long CRM outage a tenant's retry buffer
//! stops growing at the limit (counted over every replica); its webhook with an event
//! that does not fit gets 503, so the provider redelivers it and nothing is lost, while
//! the other tenants go on.

use std::time::{Duration, Instant};

use crate::helpers::*;

const LIMIT: u32 = 5;

/// The acme conversations used: one message each, spread over the buffer's shards.
fn conv(n: u32) -> String {
    format!("49151100000{n:02}")
}

async fn wait_depth(relay: &TestApp, depth: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while relay.depth().await != depth {
        assert!(
            Instant::now() < deadline,
            "the buffer did not reach {depth}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn full_tenant_is_refused_and_others_go_on(redis: Option<&RedisServer>) {
    let crm = ScriptedCrm::start().await;
    crm.set_path(CRM_PATH, Mode::Fail);
    crm.set_path(OTHER_CRM_PATH, Mode::Ok);
    let relay = TestApp::builder()
        .delivering(
            redis.map(|r| r.url()).as_deref(),
            &crm,
            300,
            &format!("max_buffered_per_tenant = {LIMIT}"),
        )
        .spawn()
        .await;

    for n in 1..=LIMIT {
        let body = wa_webhook(WA_ACME, &[(&conv(n), 1)]);
        assert_eq!(relay.post_meta_status(&body).await, 200, "event {n} fits");
    }
    assert_eq!(relay.depth().await, u64::from(LIMIT));

    // One more: refused, not buffered, the buffer no bigger.
    let refused = wa_webhook(WA_ACME, &[(&conv(LIMIT + 1), 1)]);
    assert_eq!(relay.post_meta_status(&refused).await, 503);
    assert_eq!(relay.depth().await, u64::from(LIMIT));
    // A redelivery of an event that is buffered is still answered 200.
    let again = wa_webhook(WA_ACME, &[(&conv(1), 1)]);
    assert_eq!(relay.post_meta_status(&again).await, 200);

    // The other tenant goes on.
    let globex = wa_webhook(WA_GLOBEX, &[("4915119999999", 1)]);
    assert_eq!(relay.post_meta_status(&globex).await, 200);
    assert_eq!(
        crm.wait_accepted(OTHER_CRM_PATH, 1, Duration::from_secs(5))
            .await
            .len(),
        1
    );

    let metrics = relay
        .http
        .get(relay.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchboard_events_refused_total")
                && l.contains("tenant=\"acme\"")
                && l.contains("reason=\"buffer_full\"")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("switchboard_retry_buffer_full") && l.contains("acme")),
        "{metrics}"
    );

    // Nothing lost: once the CRM is back the buffer drains, and the provider's
    // redelivery of the refused webhook is taken.
    crm.set_path(CRM_PATH, Mode::Ok);
    wait_depth(&relay, 0).await;
    assert_eq!(relay.post_meta_status(&refused).await, 200);
    let got = crm
        .wait_accepted(CRM_PATH, LIMIT as usize + 1, Duration::from_secs(10))
        .await;
    let mut convs: Vec<String> = got.iter().map(|r| conv_and_n(&r.body).0).collect();
    convs.sort();
    convs.dedup();
    assert_eq!(convs.len(), LIMIT as usize + 1, "every event arrived");
}

#[tokio::test]
async fn full_tenant_is_refused_with_503_and_others_go_on_redis() {
    let redis = RedisServer::start();
    full_tenant_is_refused_and_others_go_on(Some(&redis)).await;
}

#[tokio::test]
async fn full_tenant_is_refused_with_503_and_others_go_on_memory() {
    full_tenant_is_refused_and_others_go_on(None).await;
}

#[tokio::test]
async fn limit_counts_what_every_replica_buffered() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    crm.set(Mode::Fail);
    let relay = TestApp::builder()
        .delivering(
            Some(&redis.url()),
            &crm,
            300,
            &format!("max_buffered_per_tenant = {LIMIT}"),
        )
        .spawn()
        .await;
    let other = relay.replica().await;
    let other_url = format!("{}/webhooks/meta", other.address());
    for n in 1..=LIMIT {
        let body = wa_webhook(WA_ACME, &[(&conv(n), 1)]);
        let status = if n % 2 == 0 {
            status_or_zero(post_meta_to(&relay.http, &other_url, &body).await)
        } else {
            relay.post_meta_status(&body).await
        };
        assert_eq!(status, 200, "event {n} fits");
    }
    let refused = wa_webhook(WA_ACME, &[(&conv(LIMIT + 1), 1)]);
    assert_eq!(
        status_or_zero(post_meta_to(&relay.http, &other_url, &refused).await),
        503,
        "the other replica counts what this one buffered"
    );
    assert_eq!(relay.post_meta_status(&refused).await, 503);
    assert_eq!(relay.depth().await, u64::from(LIMIT));
}
