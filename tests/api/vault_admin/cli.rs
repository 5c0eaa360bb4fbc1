//! The operator CLI for channels and rotation, with secrets only from stdin or files.

use super::*;

#[test]
fn cli_puts_lists_deletes_and_rotates_with_secrets_only_from_stdin_or_files() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    // keygen needs no config.
    let (ok, key) = run_cli(Path::new("/nonexistent"), &["vault", "keygen"], "");
    assert!(ok, "{key}");
    let key = key.trim().to_owned();
    let mut seen = Vec::new();
    let keyring = ring_of(&key);
    let config = |backend: &str| {
        format!(
            "[store]\nbackend = \"{backend}\"\nredis_url = \"{}\"\n[vault]\nkeys = [\"{key}\"]\n[[tenants]]\nid = \"acme\"\ncrm_url = \"http://crm.test/\"\nsigning_secret = \"{SIGNING_SECRET}\"\n",
            redis.url()
        )
    };
    let path = dir.path().join("cli.toml");
    std::fs::write(&path, config("redis")).unwrap();
    let secret_file = dir.path().join("ws");
    std::fs::write(&secret_file, format!("{TELEGRAM_SECRET}\n")).unwrap();

    let (ok, out) = run_cli(
        &path,
        &[
            "channels",
            "put",
            "telegram",
            "7001234567",
            "--tenant",
            "acme",
            "--webhook-secret-file",
            secret_file.to_str().unwrap(),
        ],
        &format!("{TELEGRAM_TOKEN}\n"),
    );
    seen.push(out.clone());
    assert!(ok, "{out}");
    assert!(out.contains("created"), "{out}");
    let key_name = "switchboard:channel:telegram:7001234567";
    let hget = |f: &str| redis.cli(&["HGET", key_name, f]).trim().to_owned();
    assert_eq!(
        &*keyring.decrypt(&hget("token")).unwrap(),
        TELEGRAM_TOKEN.as_bytes()
    );
    assert_eq!(
        &*keyring.decrypt(&hget("webhook_secret")).unwrap(),
        TELEGRAM_SECRET.as_bytes()
    );

    // No secret on the command line: there is no such option.
    let (ok, out) = run_cli(
        &path,
        &[
            "channels", "put", "whatsapp", "1", "--tenant", "acme", "--token", "x",
        ],
        "",
    );
    seen.push(out.clone());
    assert!(!ok, "{out}");
    let (ok, out) = run_cli(
        &path,
        &["channels", "put", "whatsapp", "1", "--tenant", "nobody"],
        TOKEN,
    );
    seen.push(out.clone());
    assert!(!ok && out.contains("tenant"), "{out}");
    let (ok, out) = run_cli(
        &path,
        &["channels", "put", "whatsapp", "1", "--tenant", "acme"],
        "",
    );
    seen.push(out.clone());
    assert!(!ok && out.contains("empty"), "{out}");

    let (ok, out) = run_cli(&path, &["channels", "list", "--json"], "");
    seen.push(out.clone());
    assert!(ok, "{out}");
    let listed: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(listed["count"], 1);
    assert_eq!(listed["channels"][0]["webhook_secret"], "primary_key");

    let (ok, out) = run_cli(&path, &["vault", "rotate"], "");
    seen.push(out.clone());
    assert!(ok && out.contains("rotated 0 of 1"), "{out}");
    let (ok, out) = run_cli(&path, &["vault", "encrypt"], "some-token\n");
    seen.push(out.clone());
    assert!(ok, "{out}");
    assert_eq!(&*keyring.decrypt(out.trim()).unwrap(), b"some-token");

    let (ok, out) = run_cli(&path, &["channels", "delete", "telegram", "7001234567"], "");
    seen.push(out.clone());
    assert!(ok, "{out}");
    let (ok, out) = run_cli(&path, &["channels", "delete", "telegram", "7001234567"], "");
    seen.push(out.clone());
    assert!(!ok && out.contains("not in the store"), "{out}");
    assert_eq!(redis.cli(&["EXISTS", key_name]).trim(), "0");

    std::fs::write(&path, config("memory")).unwrap();
    let (ok, out) = run_cli(&path, &["channels", "list"], "");
    seen.push(out.clone());
    assert!(!ok && out.contains("memory"), "{out}");
    // Nothing the CLI printed holds a secret (the encrypt output is a Fernet token).
    for o in &seen {
        for secret in [TELEGRAM_TOKEN, TELEGRAM_SECRET, TOKEN, key.as_str()] {
            assert!(!o.contains(secret), "the CLI printed {secret}: {o}");
        }
    }
}
