//! The relay on a real Redis Cluster: three local `redis-server` masters joined with
//! `redis-cli --cluster create`. Keys land on different slots and nodes; routing, dedupe
//! and channel listing (SCAN on every master, also behind account-level webhooks) must
//! still work.

use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::store::StoreBackend;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_on_a_redis_cluster_routes_dedupes_and_lists_channels_across_nodes() {
    let cluster = RedisCluster::start(3);
    let app = TestApp::builder().cluster(cluster.urls()).spawn().await;

    // Many channels, so their keys spread over the three masters.
    for i in 0..30 {
        app.put_channel(ChannelKind::Messenger, &format!("90000{i}"), "acme", "t")
            .await;
    }
    let per_node = cluster.count_keys_per_node();
    assert!(
        per_node.iter().filter(|n| **n > 0).count() >= 2,
        "keys should spread over several nodes: {per_node:?}"
    );
    let listed = app.state.store.list_channels().await.unwrap();
    assert_eq!(
        listed.len(),
        30 + WHATSAPP_FIXTURE_CHANNELS.len(),
        "SCAN must visit every master"
    );
    assert!(listed
        .iter()
        .any(|(c, _)| *c == ChannelRef::parse(ChannelKind::Messenger, "9000029").unwrap()));

    // Webhooks route through the cluster store and dedupe there.
    for name in [
        "whatsapp/text.json",
        "whatsapp/location.json",
        "whatsapp/status_sent.json",
    ] {
        for _ in 0..2 {
            let resp = app.post_meta(&fixture(name)).await;
            assert_eq!(resp.status(), 200, "{name}");
        }
    }
    let events = app.crm_events().await;
    assert_eq!(
        events.len(),
        3,
        "each event once: dedupe works on the cluster"
    );

    // Account-level webhooks find a WABA's channels on every master.
    for i in 0..10 {
        let new = NewChannel {
            waba_id: Some(FIXTURE_WABA),
            ..NewChannel::new("globex", "t")
        };
        app.put(ChannelKind::Whatsapp, &format!("7000{i}"), &new)
            .await;
    }
    let resp = app
        .post_meta(&fixture("whatsapp/account/template_status_approved.json"))
        .await;
    assert_eq!(resp.status(), 200);
    let globex = app.wait_for_crm(OTHER_CRM_PATH, 1).await;
    assert_eq!(globex.len(), 1);
    let e = verify_standard_webhook(OTHER_SIGNING_SECRET, &globex[0]);
    assert_eq!(
        (e["type"].as_str(), e["channel"]["id"].as_str()),
        (Some("template.status"), Some("70000"))
    );
    assert_eq!(app.crm_events().await.len(), 4, "and acme's copy");
    assert_eq!(
        app.http
            .get(app.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
