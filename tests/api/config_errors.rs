//! Config errors name the key and the expected type, never the value: the CLI's
//! `check-config` and `serve`, from the file and from the environment.

use std::process::{Command, Stdio};

use crate::helpers::*;

const SECRET: &str = "LEAKED-3f9a0c2e7b1d4a6f";

fn config_with(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let key = switchboard::vault::Keyring::generate_key();
    let path = dir.join("switchboard.toml");
    std::fs::write(
        &path,
        format!("[store]\nbackend = \"memory\"\n[vault]\nkeys = [\"{key}\"]\n{extra}"),
    )
    .unwrap();
    path
}

#[test]
fn check_config_names_key_and_type_of_a_secret_list_written_as_a_string() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_with(dir.path(), &format!("[meta]\napp_secrets = \"{SECRET}\"\n"));
    for cmd in [&["check-config"][..], &["serve"][..]] {
        let (ok, out) = run_cli(&path, cmd, "");
        assert!(!ok, "{cmd:?} accepted a bad config: {out}");
        assert!(out.contains("meta.app_secrets"), "{out}");
        assert!(out.contains("expected a list, found a string"), "{out}");
        assert!(!out.contains(SECRET), "{cmd:?} printed the value: {out}");
    }
}

#[test]
fn env_value_of_the_wrong_type_is_not_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let path = config_with(dir.path(), "");
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("--config")
        .arg(&path)
        .arg("check-config")
        .env("RUST_LOG", "trace")
        .env("SWITCHBOARD__SERVER__MAX_BODY_BYTES", SECRET)
        .env_remove("SWITCHBOARD_CONFIG")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("server.max_body_bytes"), "{text}");
    assert!(text.contains("expected an integer"), "{text}");
    assert!(!text.contains(SECRET), "the value is echoed: {text}");
}
