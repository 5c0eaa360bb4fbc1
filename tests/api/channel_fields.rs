//! The channel record's optional fields (v2: `user_id`, `waba_id`, `graph`,
//! `expires_at`, `pin`) through every way in: the admin API, a record another service
//! wrote, `[[channels]]` in the config and the CLI; the PIN only ever as a Fernet token.

use serde_json::{json, Value};
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::store::StoreBackend;

use crate::helpers::*;

const KEY: &str = "switchboard:channel:whatsapp:106540352242922";

async fn put(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.http
        .put(app.url(path))
        .bearer_auth(ADMIN_TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn hget(app: &TestApp, key: &str, field: &str) -> String {
    app.redis().cli(&["HGET", key, field]).trim().to_owned()
}

#[tokio::test]
async fn admin_put_stores_the_optional_fields_and_the_pin_encrypted() {
    let app = spawn_app().await;
    let path = "/admin/v1/channels/whatsapp/106540352242922";
    let resp = put(
        &app,
        path,
        json!({"tenant": "acme", "token": "EAAG-wa-token", "user_id": "10158000000000001",
               "waba_id": "102290129340398", "expires_at": "2027-01-31T10:00:00Z", "pin": "492816"}),
    )
    .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let view: Value = resp.json().await.unwrap();
    assert_eq!(view["waba_id"], "102290129340398");
    assert_eq!(view["user_id"], "10158000000000001");
    assert_eq!(view["expires_at"], "2027-01-31T10:00:00Z");
    assert_eq!(view["pin"], "primary_key");
    assert!(view.get("graph").is_none());

    assert_eq!(hget(&app, KEY, "waba_id"), "102290129340398");
    assert_eq!(hget(&app, KEY, "expires_at"), "2027-01-31T10:00:00Z");
    let pin = hget(&app, KEY, "pin");
    assert!(pin.starts_with("gAAAAA"), "{pin}");
    assert_eq!(&*app.keyring.decrypt(&pin).unwrap(), b"492816");

    // A PUT that leaves them out keeps them (as it keeps user_id).
    let resp = put(
        &app,
        path,
        json!({"tenant": "acme", "token": "EAAG-new-token"}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(hget(&app, KEY, "waba_id"), "102290129340398");
    assert_eq!(hget(&app, KEY, "pin"), pin);

    let listed = app
        .http
        .get(app.url("/admin/v1/channels"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !listed.contains("492816") && !listed.contains(&pin),
        "{listed}"
    );
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let wa = listed["channels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "106540352242922")
        .unwrap();
    assert_eq!(wa["waba_id"], "102290129340398");
    assert_eq!(wa["pin"], "primary_key");
    assert!(!app.redis().dump_all().contains("492816"));

    // Instagram Login: graph = instagram.
    let resp = put(
        &app,
        "/admin/v1/channels/instagram/17841400000000001",
        json!({"tenant": "acme", "token": "IGAA-token", "graph": "instagram", "expires_at": "2027-01-31T10:00:00+00:00"}),
    )
    .await;
    assert_eq!(resp.status(), 201);
    let record = app
        .state
        .store
        .get_channel(&ChannelRef::parse(ChannelKind::Instagram, "17841400000000001").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert!(record.uses_instagram_graph());
    assert_eq!(
        record.expires_at.as_deref(),
        Some("2027-01-31T10:00:00+00:00")
    );
}

#[tokio::test]
async fn admin_put_with_bad_optional_fields_is_400_naming_the_field() {
    let app = spawn_app().await;
    let cases = [
        (
            "telegram/7001",
            json!({"tenant": "acme", "token": "7001:x", "waba_id": "1"}),
            "waba_id",
        ),
        (
            "whatsapp/1",
            json!({"tenant": "acme", "token": "t", "waba_id": "12ab"}),
            "waba_id",
        ),
        (
            "instagram/1",
            json!({"tenant": "acme", "token": "t", "graph": "facebook"}),
            "graph",
        ),
        (
            "messenger/1",
            json!({"tenant": "acme", "token": "t", "graph": "instagram"}),
            "graph",
        ),
        (
            "whatsapp/1",
            json!({"tenant": "acme", "token": "t", "expires_at": "next week"}),
            "expires_at",
        ),
        (
            "whatsapp/1",
            json!({"tenant": "acme", "token": "t", "pin": "12345"}),
            "pin",
        ),
        (
            "messenger/1",
            json!({"tenant": "acme", "token": "t", "pin": "123456"}),
            "pin",
        ),
        (
            "whatsapp/1",
            json!({"tenant": "acme", "token": "t", "pin": 123456}),
            "pin",
        ),
    ];
    for (p, body, field) in cases {
        let resp = put(&app, &format!("/admin/v1/channels/{p}"), body.clone()).await;
        assert_eq!(resp.status(), 400, "{body}");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_request");
        assert_eq!(problem["field"], field, "{body}: {problem}");
        assert!(!problem.to_string().contains("12345"), "{problem}");
    }
    assert_eq!(
        app.redis()
            .cli(&["EXISTS", "switchboard:channel:whatsapp:1"])
            .trim(),
        "0"
    );
}

#[tokio::test]
async fn record_written_by_another_service_is_read_and_its_pin_rotated() {
    let app = spawn_app().await;
    let old = app.vault_key.clone();
    let pin = app.keyring.encrypt(b"111222");
    app.redis().cli(&[
        "HSET",
        KEY,
        "tenant",
        "acme",
        "token",
        &app.keyring.encrypt(b"tok"),
        "waba_id",
        "555",
        "pin",
        &pin,
        "user_id",
        "42",
        "expires_at",
        "2030-01-01T00:00:00Z",
    ]);
    let record = app
        .state
        .store
        .get_channel(&ChannelRef::parse(ChannelKind::Whatsapp, "106540352242922").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.waba_id.as_deref(), Some("555"));
    assert_eq!(record.user_id.as_deref(), Some("42"));
    assert_eq!(record.expires_at.as_deref(), Some("2030-01-01T00:00:00Z"));
    assert!(record.graph.is_none());

    // A new primary key: the rotation moves the PIN too, keeping its plaintext.
    let new = switchboard::vault::Keyring::generate_key();
    let mut config = app.config.clone();
    config.vault_keys = vec![new.clone(), old.clone()];
    app.reload(&config.render(), |live| live.keyring.len() == 2)
        .await;
    let resp = app
        .http
        .post(app.url("/admin/v1/vault/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let rotated = hget(&app, KEY, "pin");
    assert_ne!(rotated, pin);
    let new_ring = switchboard::vault::Keyring::new(&[secrecy::SecretString::from(new)]).unwrap();
    assert_eq!(&*new_ring.decrypt(&rotated).unwrap(), b"111222");
    assert_eq!(hget(&app, KEY, "waba_id"), "555");
}

#[tokio::test]
async fn config_channels_carry_the_optional_fields() {
    let redis = RedisServer::start();
    let key = switchboard::vault::Keyring::generate_key();
    let ring =
        switchboard::vault::Keyring::new(&[secrecy::SecretString::from(key.clone())]).unwrap();
    let token = ring.encrypt(b"cfg-token");
    let pin = ring.encrypt(b"654321");
    let base = format!(
        "[vault]\nkeys = [\"{key}\"]\n[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n[[tenants]]\nid = \"acme\"\ncrm_url = \"http://crm.test/\"\nsigning_secret = \"{SIGNING_SECRET}\"\n",
        redis.url()
    );
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!("{base}[[channels]]\nkind = \"whatsapp\"\nid = \"777\"\ntenant = \"acme\"\ntoken = \"{token}\"\nwaba_id = \"888\"\npin = \"{pin}\"\nuser_id = \"9\"\n\n[[channels]]\nkind = \"instagram\"\nid = \"999\"\ntenant = \"acme\"\ntoken = \"{token}\"\ngraph = \"instagram\"\nexpires_at = \"2030-01-01T00:00:00Z\"\n"),
    )
    .unwrap();
    let settings = switchboard::config::Settings::load_with_env(Some(&good), false).unwrap();
    let store = switchboard::app::open_store(&settings).unwrap();
    let live = switchboard::live::Live::new(settings).unwrap();
    switchboard::reload::sync_config_channels(&store, &live)
        .await
        .unwrap();
    let hget = |k: &str, f: &str| redis.cli(&["HGET", k, f]).trim().to_owned();
    assert_eq!(hget("switchboard:channel:whatsapp:777", "waba_id"), "888");
    assert_eq!(hget("switchboard:channel:whatsapp:777", "pin"), pin);
    assert_eq!(hget("switchboard:channel:whatsapp:777", "user_id"), "9");
    assert_eq!(
        hget("switchboard:channel:instagram:999", "graph"),
        "instagram"
    );
    assert_eq!(
        hget("switchboard:channel:instagram:999", "expires_at"),
        "2030-01-01T00:00:00Z"
    );
    // Written again unchanged: nothing to do, so updated_at stays.
    let before = hget("switchboard:channel:whatsapp:777", "updated_at");
    switchboard::reload::sync_config_channels(&store, &live)
        .await
        .unwrap();
    assert_eq!(
        hget("switchboard:channel:whatsapp:777", "updated_at"),
        before
    );

    // A wrong field is refused by check-config, naming the key.
    for (extra, field) in [
        (
            "kind = \"telegram\"\nid = \"1\"\nwaba_id = \"5\"",
            "channels[0].waba_id",
        ),
        (
            "kind = \"messenger\"\nid = \"1\"\ngraph = \"instagram\"",
            "channels[0].graph",
        ),
        (
            "kind = \"messenger\"\nid = \"1\"\nexpires_at = \"soon\"",
            "channels[0].expires_at",
        ),
        (
            "kind = \"messenger\"\nid = \"1\"\npin = \"x\"",
            "channels[0].pin",
        ),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(
            &bad,
            format!("{base}[[channels]]\n{extra}\ntenant = \"acme\"\ntoken = \"{token}\"\n"),
        )
        .unwrap();
        let (ok, out) = run_cli(&bad, &["check-config"], "");
        assert!(!ok && out.contains(field), "{field}: {out}");
    }
}

#[test]
fn cli_put_takes_the_optional_fields_and_the_pin_from_a_file() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let key = switchboard::vault::Keyring::generate_key();
    let ring =
        switchboard::vault::Keyring::new(&[secrecy::SecretString::from(key.clone())]).unwrap();
    let path = dir.path().join("cli.toml");
    std::fs::write(
        &path,
        format!("[store]\nbackend = \"redis\"\nredis_url = \"{}\"\n[vault]\nkeys = [\"{key}\"]\n[[tenants]]\nid = \"acme\"\ncrm_url = \"http://crm.test/\"\nsigning_secret = \"{SIGNING_SECRET}\"\n", redis.url()),
    )
    .unwrap();
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, "135790\n").unwrap();
    let (ok, out) = run_cli(
        &path,
        &[
            "channels",
            "put",
            "whatsapp",
            "321",
            "--tenant",
            "acme",
            "--waba-id",
            "654",
            "--expires-at",
            "2030-01-01T00:00:00Z",
            "--pin-file",
            pin_file.to_str().unwrap(),
        ],
        "EAAG-cli-token\n",
    );
    assert!(ok, "{out}");
    assert!(!out.contains("135790"), "{out}");
    let hget = |f: &str| {
        redis
            .cli(&["HGET", "switchboard:channel:whatsapp:321", f])
            .trim()
            .to_owned()
    };
    assert_eq!(hget("waba_id"), "654");
    assert_eq!(hget("expires_at"), "2030-01-01T00:00:00Z");
    assert_eq!(&*ring.decrypt(&hget("pin")).unwrap(), b"135790");
    let (ok, out) = run_cli(&path, &["channels", "list", "--json"], "");
    assert!(ok, "{out}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["channels"][0]["waba_id"], "654");
    assert_eq!(listed["channels"][0]["pin"], "primary_key");

    let (ok, out) = run_cli(
        &path,
        &[
            "channels",
            "put",
            "instagram",
            "1",
            "--tenant",
            "acme",
            "--graph",
            "fb",
        ],
        "tok\n",
    );
    assert!(!ok && out.contains("graph"), "{out}");
}
