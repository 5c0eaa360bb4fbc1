//! The routing cache (Redis store): a channel moved to another tenant is routed to it
//! by every replica, through the version key when a relay wrote it (well before the
//! cache TTL) and within `store.channel_cache_ms` when someone else wrote the store.

use std::time::{Duration, Instant};

use switchboard::app::Application;
use switchboard::channels::ChannelKind;
use switchboard::config::Settings;

use crate::helpers::*;

/// A replica of `app` with its own routing cache TTL.
async fn replica_with_cache(
    app: &TestApp,
    cache_ms: u64,
) -> (String, actix_web::dev::ServerHandle) {
    let mut settings = Settings::load_with_env(Some(&app.config_path), false).unwrap();
    settings.store.channel_cache_ms = cache_ms;
    let relay = Application::build(settings, None).await.unwrap();
    let url = format!("http://127.0.0.1:{}/webhooks/meta", relay.port());
    let handle = relay.handle();
    tokio::spawn(relay.run_until_stopped());
    (url, handle)
}

/// Posts fresh webhooks (conversation `wa`, from `n` on) to `url` until one reaches
/// `crm_path`; how many were posted, or None by the deadline.
async fn post_until_routed_to(app: &TestApp, url: &str, wa: &str, crm_path: &str) -> Option<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = app.crm_requests_at(crm_path).await.len();
    for n in 1.. {
        let body = wa_webhook(WA_ACME, &[(wa, n)]);
        assert_eq!(
            status_or_zero(post_meta_to(&app.http, url, &body).await),
            200
        );
        if app.crm_requests_at(crm_path).await.len() > before {
            return Some(n);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

#[tokio::test]
async fn a_channel_moved_by_one_replica_is_routed_to_its_new_tenant_by_the_other_before_the_cache_ttl(
) {
    let app = spawn_app().await;
    // The other replica trusts its cache for a minute: only the version key can tell it.
    let (url, handle) = replica_with_cache(&app, 60_000).await;
    assert_eq!(
        post_until_routed_to(&app, &url, "4915110000001", CRM_PATH).await,
        Some(1),
        "routed to acme (and cached)"
    );

    app.put_channel(ChannelKind::Whatsapp, WA_ACME, "globex", "wa-token")
        .await;
    assert!(
        post_until_routed_to(&app, &url, "4915110000002", OTHER_CRM_PATH)
            .await
            .is_some(),
        "the replica noticed the move"
    );
    // From then on, nothing more for acme.
    let acme = app.crm_requests_at(CRM_PATH).await.len();
    let body = wa_webhook(WA_ACME, &[("4915110000003", 1)]);
    assert_eq!(
        status_or_zero(post_meta_to(&app.http, &url, &body).await),
        200
    );
    assert_eq!(app.crm_requests_at(CRM_PATH).await.len(), acme);
    handle.stop(true).await;
}

#[tokio::test]
async fn a_channel_rewritten_by_another_service_is_routed_anew_once_the_cache_ttl_passed() {
    let app = spawn_app().await;
    let (url, handle) = replica_with_cache(&app, 300).await;
    assert_eq!(
        post_until_routed_to(&app, &url, "4915110000011", CRM_PATH).await,
        Some(1)
    );
    // Another writer changes the public layout directly (no version bump).
    let key = format!("switchboard:channel:whatsapp:{WA_ACME}");
    app.redis().cli(&["HSET", &key, "tenant", "globex"]);
    assert!(
        post_until_routed_to(&app, &url, "4915110000012", OTHER_CRM_PATH)
            .await
            .is_some(),
        "seen once the cached entry expired"
    );
    handle.stop(true).await;
}

#[tokio::test]
async fn a_channel_deleted_through_the_admin_api_is_unroutable_at_once_on_that_replica() {
    let app = spawn_app().await;
    let body = wa_webhook(WA_ACME, &[("4915110000021", 1)]);
    let v: serde_json::Value = app.post_meta(&body).await.json().await.unwrap();
    assert_eq!(v["delivered"], 1, "{v}");
    let deleted = app
        .http
        .delete(app.url(&format!("/admin/v1/channels/whatsapp/{WA_ACME}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success(), "{}", deleted.status());
    let body = wa_webhook(WA_ACME, &[("4915110000021", 2)]);
    let v: serde_json::Value = app.post_meta(&body).await.json().await.unwrap();
    assert_eq!(v["unroutable"], 1, "{v}");
    assert_eq!(v["delivered"], 0, "{v}");
}
