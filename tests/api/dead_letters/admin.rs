//! The dead-letter admin API on Redis, the memory store and a Cluster: given up,
//! listed, redriven (arrives once), dropped; the purges and the buffer limit.

use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard::delivery::{Outcome, Worker};
use switchboard::vault::Keyring;

use super::*;

#[tokio::test]
async fn a_given_up_event_is_kept_listed_redriven_and_arrives_once_redis() {
    let redis = RedisServer::start();
    given_up_redriven_once(Some(&redis)).await;
}

#[tokio::test]
async fn a_given_up_event_is_kept_listed_redriven_and_arrives_once_memory() {
    given_up_redriven_once(None).await;
}

async fn given_up_redriven_once(redis: Option<&RedisServer>) {
    let crm = ScriptedCrm::start().await;
    let (relay, worker) = relay_without_worker(
        redis.map(|r| r.url()).as_deref(),
        &crm,
        "dead_letter_ttl_s = 3600",
    )
    .await;
    crm.set(Mode::Fail);
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(WA_ID, 1)]))
            .await,
        200
    );

    // While it is retried, the stats show it buffered for acme.
    let (status, stats) = admin(&relay, get(), "/admin/v1/buffer/stats").await;
    assert_eq!(status, 200);
    assert_eq!(stats["buffered"], 1, "{stats}");
    assert_eq!(stats["dead_letter_ttl_s"], 3600);
    let buffering = stats.clone();
    let acme = &stats["tenants"][0];
    assert_eq!(
        (acme["tenant"].as_str(), acme["buffered"].as_u64()),
        (Some("acme"), Some(1))
    );
    assert_eq!(acme["dead_letters"], 0);
    assert_eq!(stats["tenants"][1]["tenant"], "globex");

    let seen = step_until(&worker, Outcome::GivenUp).await;
    assert!(seen.contains(&Outcome::Retried), "{seen:?}");
    let refused = crm.received().len();
    assert!(refused >= 2, "the CRM refused it more than once: {refused}");
    assert!(crm.accepted_at(CRM_PATH).is_empty());

    // Listed, by ids only.
    let (status, list) = admin(&relay, get(), "/admin/v1/dead-letters").await;
    assert_eq!(status, 200);
    assert_eq!(
        (list["enabled"].as_bool(), list["count"].as_u64()),
        (Some(true), Some(1)),
        "{list}"
    );
    let dl = &list["dead_letters"][0];
    let id = dl["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("evt_"), "{dl}");
    assert_eq!(dl["tenant"], "acme");
    assert_eq!(dl["type"], "message.received");
    assert_eq!(dl["channel"], format!("whatsapp:{WA_ACME}"));
    assert!(dl["attempts"].as_u64().unwrap() >= 1, "{dl}");
    assert!(dl["age_s"].is_u64() && dl["dead_for_s"].is_u64(), "{dl}");
    let mut fields: Vec<&str> = dl.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "age_s",
            "attempts",
            "channel",
            "dead_for_s",
            "expires_at",
            "first_seen_at",
            "given_up_at",
            "id",
            "tenant",
            "type"
        ]
    );
    let (status, one) = admin(&relay, get(), &format!("/admin/v1/dead-letters/{id}")).await;
    assert_eq!((status, one["id"].as_str()), (200, Some(id.as_str())));
    let (_, other) = admin(&relay, get(), "/admin/v1/dead-letters?tenant=globex").await;
    assert_eq!(other["count"], 0);
    let (_, stats) = admin(&relay, get(), "/admin/v1/buffer/stats").await;
    assert_eq!(
        (stats["buffered"].as_u64(), stats["dead_letters"].as_u64()),
        (Some(0), Some(1)),
        "{stats}"
    );

    if let Some(redis) = redis {
        // In Redis: encrypted, with the dead-letter TTL, in the shard's hash tag.
        let (dump, ttls) = redis.dump_with_ttls();
        assert!(!dump.contains("secret text"), "{dump}");
        assert!(!dump.contains(WA_ID), "{dump}");
        let entry = ttls
            .iter()
            .find(|(k, _)| {
                k.starts_with("switchboard:dead:{s") && k.ends_with(&format!(":entry:{id}"))
            })
            .unwrap_or_else(|| panic!("no dead-letter entry key: {ttls:?}"));
        assert!(entry.1 > 3_500_000 && entry.1 <= 3_600_000, "{entry:?}");
        for (k, ttl) in ttls.iter().filter(|(k, _)| !k.contains(":channel:")) {
            assert!(*ttl > 0, "{k} has no TTL");
        }
        assert!(
            !dump.contains("retry:{s0}:pending") && !dump.contains(":pending:"),
            "{dump}"
        );
    }

    // Redrive while the CRM accepts: it arrives once, verified, with its original id.
    crm.set(Mode::Ok);
    let (status, r) = admin(
        &relay,
        post(),
        &format!("/admin/v1/dead-letters/{id}/redrive"),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    assert_match_openapi(&[
        ("DeadLetter", &one),
        ("BufferStats", &stats),
        ("BufferStats", &buffering),
        ("RedriveReport", &r),
    ]);
    assert_eq!(
        (r["id"].as_str(), r["outcome"].as_str()),
        (Some(id.as_str()), Some("scheduled"))
    );
    let (_, list) = admin(&relay, get(), "/admin/v1/dead-letters").await;
    assert_eq!(list["count"], 0, "gone from the list once redriven");
    step_until(&worker, Outcome::Delivered).await;
    for _ in 0..5 {
        assert_eq!(worker.deliver_next().await.unwrap(), Outcome::Idle);
    }
    let got = crm.accepted_at(CRM_PATH);
    assert_eq!(got.len(), 1);
    verify_standard_webhook(SIGNING_SECRET, &got[0]);
    assert_eq!(got[0].webhook_id, id);
    assert_eq!(
        got[0].body["data"]["message"]["text"],
        format!("secret text {WA_ID} #1")
    );

    // Once delivered, neither a second redrive nor a provider redelivery sends it again.
    let (status, p) = admin(
        &relay,
        post(),
        &format!("/admin/v1/dead-letters/{id}/redrive"),
    )
    .await;
    assert_eq!((status, p["code"].as_str()), (404, Some("not_found")));
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(WA_ID, 1)]))
            .await,
        200
    );
    assert_eq!(crm.accepted_at(CRM_PATH).len(), 1);

    // Dedupe applies to a redrive: given up, then delivered directly by a provider
    // redelivery, then redriven → not sent again.
    let second = give_up(&relay, &worker, &crm, 2).await;
    crm.set(Mode::Ok);
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(WA_ID, 2)]))
            .await,
        200
    );
    assert_eq!(crm.accepted_at(CRM_PATH).len(), 2);
    let (status, r) = admin(
        &relay,
        post(),
        &format!("/admin/v1/dead-letters/{second}/redrive"),
    )
    .await;
    assert_eq!(
        (status, r["outcome"].as_str()),
        (200, Some("already_delivered")),
        "{r}"
    );
    for _ in 0..5 {
        assert_eq!(worker.deliver_next().await.unwrap(), Outcome::Idle);
    }
    assert_eq!(crm.accepted_at(CRM_PATH).len(), 2);

    // Drop: gone for good.
    let third = give_up(&relay, &worker, &crm, 3).await;
    let (status, _) = admin(&relay, delete(), &format!("/admin/v1/dead-letters/{third}")).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&relay, delete(), &format!("/admin/v1/dead-letters/{third}")).await;
    assert_eq!(status, 404);
    let (_, stats) = admin(&relay, get(), "/admin/v1/buffer/stats").await;
    assert_eq!(
        (stats["buffered"].as_u64(), stats["dead_letters"].as_u64()),
        (Some(0), Some(0)),
        "{stats}"
    );
    if let Some(redis) = redis {
        let (dump, _) = redis.dump_with_ttls();
        assert!(!dump.contains("switchboard:dead:"), "{dump}");
    }

    // Bulk redrive of a tenant's dead letters.
    let fourth = give_up(&relay, &worker, &crm, 4).await;
    crm.set(Mode::Ok);
    let (status, r) = admin(&relay, post(), "/admin/v1/dead-letters/redrive?tenant=acme").await;
    assert_eq!((status, r["count"].as_u64()), (200, Some(1)), "{r}");
    assert_eq!(r["redriven"][0]["id"], fourth.as_str());
    step_until(&worker, Outcome::Delivered).await;
    let got = crm.accepted_at(CRM_PATH);
    assert_eq!(got.len(), 3);
    assert_eq!(got[2].webhook_id, fourth);
}

#[tokio::test]
async fn dead_letter_endpoints_need_the_admin_token_and_check_their_input() {
    let crm = ScriptedCrm::start().await;
    let (relay, _worker) = relay_without_worker(None, &crm, "dead_letter_ttl_s = 60").await;
    for (m, p) in [
        (get(), "/admin/v1/dead-letters"),
        (get(), "/admin/v1/dead-letters/evt_x"),
        (post(), "/admin/v1/dead-letters/evt_x/redrive"),
        (post(), "/admin/v1/dead-letters/redrive"),
        (delete(), "/admin/v1/dead-letters/evt_x"),
        (get(), "/admin/v1/buffer/stats"),
    ] {
        let r = relay
            .http
            .request(m.clone(), format!("{}{p}", relay.address))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m} {p}");
        let r = relay
            .http
            .request(m.clone(), format!("{}{p}", relay.address))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{m} {p}");
    }
    for bad in ["0", "1001", "ten", "-1"] {
        let (status, p) = admin(
            &relay,
            get(),
            &format!("/admin/v1/dead-letters?limit={bad}"),
        )
        .await;
        assert_eq!(
            (status, p["field"].as_str()),
            (400, Some("limit")),
            "{bad}: {p}"
        );
    }
    let (status, p) = admin(&relay, get(), "/admin/v1/dead-letters/evt_nope").await;
    assert_eq!((status, p["code"].as_str()), (404, Some("not_found")));
    let (status, p) = admin(&relay, post(), "/admin/v1/dead-letters/evt_nope/redrive").await;
    assert_eq!((status, p["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn with_the_default_ttl_of_zero_a_given_up_event_is_deleted_not_kept() {
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let (relay, worker) = relay_without_worker(Some(&redis.url()), &crm, "").await;
    crm.set(Mode::Fail);
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[(WA_ID, 1)]))
            .await,
        200
    );
    step_until(&worker, Outcome::GivenUp).await;
    let (_, list) = admin(&relay, get(), "/admin/v1/dead-letters").await;
    assert_eq!(
        (list["enabled"].as_bool(), list["count"].as_u64()),
        (Some(false), Some(0)),
        "{list}"
    );
    let (dump, _) = redis.dump_with_ttls();
    assert!(!dump.contains("switchboard:dead:"), "{dump}");
    assert!(!dump.contains("evt_"), "{dump}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_on_a_redis_cluster_are_kept_listed_and_redriven_across_shards() {
    let cluster = RedisCluster::start(3);
    let crm = ScriptedCrm::start().await;
    let key = Keyring::generate_key();
    let relay = TestApp::builder()
        .delivering(
            None,
            &crm,
            300,
            "worker = false\nretry_buffer_ttl_s = 1\nbreaker_failures = 100000\ndead_letter_ttl_s = 600",
        )
        .cluster(cluster.urls())
        .vault_key(&key)
        .spawn()
        .await;
    let worker = Worker::new(
        relay.state.live.clone(),
        relay.state.dispatcher.clone(),
        "test-worker",
    );
    crm.set(Mode::Fail);
    // Eight conversations: their entries spread over the shards (and nodes).
    let convs: Vec<String> = (0..8).map(|i| format!("49151200000{i:02}")).collect();
    for c in &convs {
        assert_eq!(
            relay
                .post_meta_status(&wa_webhook(WA_ACME, &[(c, 1)]))
                .await,
            200
        );
    }
    let mut given_up = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while given_up < convs.len() {
        if worker.deliver_next().await.unwrap() == Outcome::GivenUp {
            given_up += 1;
        }
        assert!(Instant::now() < deadline, "only {given_up} given up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, list) = admin(&relay, get(), "/admin/v1/dead-letters").await;
    assert_eq!(list["count"], 8, "{list}");
    let (_, stats) = admin(&relay, get(), "/admin/v1/buffer/stats").await;
    assert_eq!(stats["tenants"][0]["dead_letters"], 8, "{stats}");

    crm.set(Mode::Ok);
    let (status, r) = admin(&relay, post(), "/admin/v1/dead-letters/redrive").await;
    assert_eq!((status, r["count"].as_u64()), (200, Some(8)), "{r}");
    // (Stepped at once: the redriven entries get a fresh 1 s window.)
    assert!(
        crm.accepted_at(CRM_PATH).is_empty(),
        "the worker sends them"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while crm.accepted_at(CRM_PATH).len() < 8 {
        worker.deliver_next().await.unwrap();
        assert!(Instant::now() < deadline, "not all redelivered");
    }
    for _ in 0..10 {
        assert_eq!(worker.deliver_next().await.unwrap(), Outcome::Idle);
    }
    let got = crm.accepted_at(CRM_PATH);
    assert_eq!(got.len(), 8, "each once");
    let mut seen: Vec<String> = got.iter().map(|r| conv_and_n(&r.body).0).collect();
    seen.sort();
    assert_eq!(seen, convs);
    let (_, stats) = admin(&relay, get(), "/admin/v1/buffer/stats").await;
    assert_eq!(
        (stats["buffered"].as_u64(), stats["dead_letters"].as_u64()),
        (Some(0), Some(0)),
        "{stats}"
    );
}

#[tokio::test]
async fn data_deletion_and_unsend_purge_the_dead_letter_list() {
    use crate::privacy::{form, post_form, put_user_channel, signed, user_payload, USER};
    use switchboard::channels::ChannelKind;
    let redis = RedisServer::start();
    let crm = ScriptedCrm::start().await;
    let (relay, worker) =
        relay_without_worker(Some(&redis.url()), &crm, "dead_letter_ttl_s = 600").await;

    // Unsend: a message given up, then taken back by the customer → never redriven.
    let ig = "17841405822304914";
    relay
        .put_channel(ChannelKind::Instagram, ig, "acme", "t")
        .await;
    let instagram = |deleted: bool| {
        let mut v: Value = serde_json::from_slice(&fixture("instagram/text.json")).unwrap();
        let message = &mut v["entry"][0]["messaging"][0]["message"];
        message["mid"] = "mid.taken.back".into();
        if deleted {
            message.as_object_mut().unwrap().remove("text");
            message["is_deleted"] = true.into();
        }
        serde_json::to_vec(&v).unwrap()
    };
    crm.set(Mode::Fail);
    assert_eq!(relay.post_meta_status(&instagram(false)).await, 200);
    step_until(&worker, Outcome::GivenUp).await;
    let (_, list) = admin(&relay, get(), "/admin/v1/dead-letters").await;
    assert_eq!(
        list["dead_letters"][0]["channel"],
        format!("instagram:{ig}"),
        "{list}"
    );
    crm.set(Mode::Ok);
    assert_eq!(relay.post_meta_status(&instagram(true)).await, 200);
    let (_, list) = admin(&relay, get(), "/admin/v1/dead-letters").await;
    assert_eq!(list["count"], 0, "the unsent message left the list: {list}");
    let got = crm.accepted_at(CRM_PATH);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body["type"], "message.deleted");

    // Data deletion: the user's channel's dead letters go with it.
    put_user_channel(&relay, ChannelKind::Whatsapp, WA_ACME, "acme", Some(USER)).await;
    give_up(&relay, &worker, &crm, 1).await;
    crm.set(Mode::Ok);
    let resp = post_form(
        &relay,
        "/meta/data-deletion",
        form(&signed(user_payload(USER, 1_763_800_000))),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let (_, list) = admin(&relay, get(), "/admin/v1/dead-letters").await;
    assert_eq!(list["count"], 0, "{list}");
    let dump = redis.dump_all();
    assert!(!dump.contains("switchboard:dead:"), "{dump}");
    for id in [USER, WA_ACME] {
        assert!(!dump.contains(id), "{id} is still in Redis:\n{dump}");
    }
}

#[tokio::test]
async fn a_redrive_into_a_full_buffer_is_refused_and_the_dead_letter_kept() {
    let crm = ScriptedCrm::start().await;
    let (relay, worker) = relay_without_worker(
        None,
        &crm,
        "dead_letter_ttl_s = 600\nmax_buffered_per_tenant = 1",
    )
    .await;
    let id = give_up(&relay, &worker, &crm, 1).await;
    // Another conversation's event fills acme's buffer (limit 1).
    assert_eq!(
        relay
            .post_meta_status(&wa_webhook(WA_ACME, &[("4915110000009", 1)]))
            .await,
        200
    );
    let (_, stats) = admin(&relay, get(), "/admin/v1/buffer/stats").await;
    assert_eq!(stats["max_buffered_per_tenant"], 1, "{stats}");
    assert_eq!(
        (
            stats["tenants"][0]["buffered"].as_u64(),
            stats["tenants"][0]["full"].as_bool()
        ),
        (Some(1), Some(true)),
        "{stats}"
    );
    assert_match_openapi(&[("BufferStats", &stats)]);
    let (status, p) = admin(
        &relay,
        post(),
        &format!("/admin/v1/dead-letters/{id}/redrive"),
    )
    .await;
    assert_eq!(
        (status, p["code"].as_str()),
        (503, Some("upstream_unavailable")),
        "{p}"
    );
    assert!(
        p["detail"]
            .as_str()
            .unwrap()
            .contains("max_buffered_per_tenant"),
        "{p}"
    );
    let (_, list) = admin(&relay, get(), "/admin/v1/dead-letters").await;
    assert_eq!(list["count"], 1, "kept: {list}");

    // Once the buffer drains, the redrive goes through and the event arrives once.
    crm.set(Mode::Ok);
    step_until(&worker, Outcome::Delivered).await;
    let (status, r) = admin(
        &relay,
        post(),
        &format!("/admin/v1/dead-letters/{id}/redrive"),
    )
    .await;
    assert_eq!(
        (status, r["outcome"].as_str()),
        (200, Some("scheduled")),
        "{r}"
    );
    step_until(&worker, Outcome::Delivered).await;
    let got = crm.accepted_at(CRM_PATH);
    assert_eq!(got.len(), 2);
    assert_eq!(got.iter().filter(|r| r.webhook_id == id).count(), 1);
}
