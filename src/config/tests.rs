//! The unit tests of loading and validating the configuration.

use secrecy::ExposeSecret;

use super::*;

const KEY: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";

#[test]
fn defaults_without_vault_keys_name_the_key() {
    let err = Settings::from_toml("").unwrap_err().to_string();
    assert!(err.contains("vault.keys"), "{err}");
}

#[test]
fn unknown_key_is_named() {
    let err = Settings::from_toml(&format!(
        "[vault]\nkeys=[\"{KEY}\"]\n[server]\nbindd = \"x\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("server") && err.contains("bindd"), "{err}");
}

#[test]
fn wrong_type_is_named_with_its_path() {
    let err = Settings::from_toml(&format!(
        "[vault]\nkeys=[\"{KEY}\"]\n[delivery]\ntimeout_ms = \"soon\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("delivery.timeout_ms"), "{err}");
}

/// A value of the wrong type is named by its key and the expected type; the value
/// itself (here a secret list written as one string) never appears.
#[test]
fn wrong_type_error_names_key_and_type_never_the_value() {
    let secret = "LEAKED-8f3a9c2e1b4d7a6f";
    for (toml, key, expected) in [
        (
            format!("[vault]\nkeys=[\"{KEY}\"]\n[meta]\napp_secrets = \"{secret}\"\n"),
            "meta.app_secrets",
            "expected a list, found a string",
        ),
        (
            format!("[vault]\nkeys=\"{secret}\"\n"),
            "vault.keys",
            "expected a list, found a string",
        ),
        (
            format!("[vault]\nkeys=[\"{KEY}\"]\n[server]\nmax_body_bytes = \"{secret}\"\n"),
            "server.max_body_bytes",
            "expected an integer, found a string",
        ),
        (
            format!("[vault]\nkeys=[\"{KEY}\"]\n[log]\nformat = \"{secret}\"\n"),
            "log.format",
            "not an accepted value",
        ),
        (
            format!("[vault]\nkeys=[\"{KEY}\"]\n[[tenants]]\nid=\"a\"\ncrm_url=\"http://x\"\nsigning_secret=[\"{secret}\"]\n"),
            "tenants[0].signing_secret",
            "expected a string, found a list",
        ),
    ] {
        let err = Settings::from_toml(&toml).unwrap_err().to_string();
        assert!(err.contains(key), "{err}");
        assert!(err.contains(expected), "{err}");
        assert!(!err.contains("LEAKED"), "the value is echoed: {err}");
    }
}

#[test]
fn a_dead_letter_ttl_over_a_year_is_refused() {
    let toml =
        |ttl: u64| format!("[vault]\nkeys=[\"{KEY}\"]\n[delivery]\ndead_letter_ttl_s = {ttl}\n");
    let err = Settings::from_toml(&toml(MAX_DEAD_LETTER_TTL_S + 1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("delivery.dead_letter_ttl_s"), "{err}");
    let ok = Settings::from_toml(&toml(MAX_DEAD_LETTER_TTL_S)).unwrap();
    assert_eq!(ok.delivery.dead_letter_ttl_s, MAX_DEAD_LETTER_TTL_S);
    assert_eq!(
        Settings::from_toml(&toml(0))
            .unwrap()
            .delivery
            .dead_letter_ttl_s,
        0
    );
}

#[test]
fn zero_body_timeout_is_refused() {
    let err = Settings::from_toml(&format!(
        "[vault]\nkeys=[\"{KEY}\"]\n[server]\nbody_timeout_ms = 0\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("server.body_timeout_ms"), "{err}");
}

#[test]
fn channel_id_not_of_its_kind_is_refused_naming_the_key() {
    let err = Settings::from_toml(&format!(
        "[vault]\nkeys=[\"{KEY}\"]\n[store]\nbackend=\"memory\"\n[[channels]]\nkind=\"whatsapp\"\nid=\"../1\"\ntenant=\"nobody\"\ntoken=\"gAAAA\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("channels[0].id"), "{err}");
    assert!(err.contains("digits"), "{err}");
}

#[test]
fn channel_with_undeclared_tenant_is_refused() {
    let err = Settings::from_toml(&format!(
        "[vault]\nkeys=[\"{KEY}\"]\n[store]\nbackend=\"memory\"\n[[channels]]\nkind=\"whatsapp\"\nid=\"1\"\ntenant=\"nobody\"\ntoken=\"gAAAA\"\n"
    ))
    .unwrap_err()
    .to_string();
    assert!(err.contains("channels[0].tenant"), "{err}");
}

#[test]
fn secret_files_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, format!("{KEY}\n\n")).unwrap();
    let s = Settings::from_toml(&format!("[vault]\nkeys_file = \"{}\"\n", keys.display())).unwrap();
    assert_eq!(s.vault.keys.len(), 1);
    assert_eq!(s.vault.keys[0].expose_secret(), KEY);
}

#[test]
fn toml_syntax_error_does_not_quote_the_line() {
    let err = Settings::from_toml("[meta]\napp_secrets = [\"s3cr3t-value\" \"x\"]\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 2"), "{err}");
    assert!(!err.contains("s3cr3t-value"), "{err}");
}

#[test]
fn debug_never_prints_secrets() {
    let s = Settings::from_toml(&format!("[vault]\nkeys=[\"{KEY}\"]\n")).unwrap();
    assert!(!format!("{s:?}").contains(KEY));
}
