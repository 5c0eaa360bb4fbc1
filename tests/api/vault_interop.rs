//! Fernet interop: the spec's vectors (fernet/spec), and tokens crossing between this
//! relay and Python's `cryptography` (the library other services write channels with).

use crate::helpers::python;

use secrecy::SecretString;
use serde_json::Value;
use switchboard::vault::{KeyMatch, Keyring};

fn vectors(name: &str) -> Vec<Value> {
    serde_json::from_slice(&crate::helpers::fixture(&format!("vectors/fernet/{name}"))).unwrap()
}

fn ring(keys: &[&str]) -> Keyring {
    Keyring::new(
        &keys
            .iter()
            .map(|k| SecretString::from(k.to_string()))
            .collect::<Vec<_>>(),
    )
    .unwrap()
}

/// Unix seconds of an RFC 3339 time with a numeric offset (`1985-10-26T01:20:01-07:00`).
fn unix(rfc3339: &str) -> u64 {
    let n = |a: usize, b: usize| rfc3339[a..b].parse::<i64>().unwrap();
    let (y, m, d) = (n(0, 4), n(5, 7), n(8, 10));
    let (hh, mm, ss) = (n(11, 13), n(14, 16), n(17, 19));
    let sign = if &rfc3339[19..20] == "-" { -1 } else { 1 };
    let offset = sign * (n(20, 22) * 3600 + n(23, 25) * 60);
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    (days * 86400 + hh * 3600 + mm * 60 + ss - offset) as u64
}

#[test]
fn fernet_vector_time_parser_matches_known_instants() {
    assert_eq!(unix("1970-01-01T00:00:00+00:00"), 0);
    // The spec's instant, as Python's datetime computes it.
    assert_eq!(unix("1985-10-26T01:20:00-07:00"), 499162800);
}

#[test]
fn fernet_generate_vectors_decrypt_and_reencrypt_with_the_same_header() {
    for v in vectors("generate.json") {
        let key = v["secret"].as_str().unwrap();
        let now = unix(v["now"].as_str().unwrap());
        let token = v["token"].as_str().unwrap();
        let f = fernet::Fernet::new(key).unwrap();
        assert_eq!(
            f.decrypt_at_time(token, None, now).unwrap(),
            v["src"].as_str().unwrap().as_bytes()
        );
        // Our keyring opens it too (no TTL, as stored tokens have none).
        assert_eq!(&*ring(&[key]).decrypt(token).unwrap(), b"hello");
        // Made here at the same instant: same version byte and timestamp, and the spec's
        // length for a 5-byte message.
        let ours = f.encrypt_at_time(v["src"].as_str().unwrap().as_bytes(), now);
        assert_eq!(ours.len(), token.len());
        assert_eq!(&ours[..12], &token[..12]);
        assert_eq!(
            f.decrypt_at_time(&ours, Some(60), now).unwrap(),
            b"hello".to_vec()
        );
    }
}

#[test]
fn fernet_verify_vectors_decrypt_at_their_time_with_their_ttl() {
    for v in vectors("verify.json") {
        let f = fernet::Fernet::new(v["secret"].as_str().unwrap()).unwrap();
        let got = f
            .decrypt_at_time(
                v["token"].as_str().unwrap(),
                Some(v["ttl_sec"].as_u64().unwrap()),
                unix(v["now"].as_str().unwrap()),
            )
            .unwrap();
        assert_eq!(got, v["src"].as_str().unwrap().as_bytes());
    }
}

#[test]
fn fernet_invalid_vectors_are_rejected_and_the_keyring_rejects_every_forgery() {
    let all = vectors("invalid.json");
    assert_eq!(all.len(), 8);
    for v in all {
        let desc = v["desc"].as_str().unwrap();
        let key = v["secret"].as_str().unwrap();
        let token = v["token"].as_str().unwrap();
        let f = fernet::Fernet::new(key).unwrap();
        assert!(
            f.decrypt_at_time(
                token,
                Some(v["ttl_sec"].as_u64().unwrap()),
                unix(v["now"].as_str().unwrap())
            )
            .is_err(),
            "{desc}"
        );
        // Stored tokens have no TTL (like Python's `decrypt(token)` without one), so
        // only the time-based cases open in the keyring; every forged or damaged
        // token is refused.
        let time_based = desc.contains("TTL") || desc.contains("clock skew");
        let keyring = ring(&[key]);
        assert_eq!(keyring.decrypt(token).is_ok(), time_based, "{desc}");
        assert_eq!(
            keyring.key_match(token) == KeyMatch::None,
            !time_based,
            "{desc}"
        );
    }
}

#[test]
fn fernet_time_based_invalid_vectors_open_in_python_without_ttl_too() {
    // The same behaviour as the library other services use.
    let cases: Vec<Value> = vectors("invalid.json")
        .into_iter()
        .filter(|v| v["desc"].as_str().unwrap().contains("TTL"))
        .collect();
    assert_eq!(cases.len(), 1);
    let key = cases[0]["secret"].as_str().unwrap();
    let token = cases[0]["token"].as_str().unwrap();
    let ours = ring(&[key]).decrypt(token).unwrap();
    let out = python(
        "import sys\nfrom cryptography.fernet import Fernet\nprint(Fernet(sys.argv[1]).decrypt(sys.argv[2].encode()).hex())",
        &[key, token],
    );
    assert_eq!(out, hex::encode(&*ours));
}

#[test]
fn python_made_tokens_open_here_including_multifernet_rotate_and_a_fast_clock() {
    let old = Keyring::generate_key();
    let new = Keyring::generate_key();
    let out = python(
        r#"
import sys, time
from cryptography.fernet import Fernet, MultiFernet
old, new = Fernet(sys.argv[1]), Fernet(sys.argv[2])
plain = b"EAAG-python-token"
print(old.encrypt(plain).decode())
print(MultiFernet([new, old]).rotate(old.encrypt(plain)).decode())
print(new.encrypt_at_time(plain, int(time.time()) + 600).decode())
"#,
        &[&old, &new],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3);
    let both = ring(&[&new, &old]);
    for token in &lines {
        assert_eq!(&*both.decrypt(token).unwrap(), b"EAAG-python-token");
    }
    assert_eq!(both.key_match(lines[0]), KeyMatch::Older);
    assert_eq!(both.key_match(lines[1]), KeyMatch::Primary);
    // A producer whose clock runs ten minutes ahead: Python opens it without a TTL, so
    // must we (the `fernet` crate's own `decrypt` refuses it).
    assert!(fernet::Fernet::new(&new)
        .unwrap()
        .decrypt(lines[2])
        .is_err());
    assert_eq!(ring(&[&new]).key_match(lines[2]), KeyMatch::Primary);
}

#[test]
fn tokens_made_here_open_in_python_with_a_ttl_and_after_rotation_only_under_the_new_key() {
    let old = Keyring::generate_key();
    let new = Keyring::generate_key();
    let made = ring(&[&old]).encrypt(b"EAAG-rust-token");
    let rotated = ring(&[&new, &old]).rotate(&made).unwrap().unwrap();
    let out = python(
        r#"
import sys
from cryptography.fernet import Fernet, MultiFernet, InvalidToken
old, new = Fernet(sys.argv[1]), Fernet(sys.argv[2])
made, rotated = sys.argv[3].encode(), sys.argv[4].encode()
print(old.decrypt(made, ttl=60).decode())
print(MultiFernet([new, old]).decrypt(made).decode())
print(new.decrypt(rotated).decode())
try:
    old.decrypt(rotated)
    print("old opens rotated")
except InvalidToken:
    print("old refuses rotated")
print(new.extract_timestamp(rotated) == old.extract_timestamp(made))
"#,
        &[&old, &new, &made, &rotated],
    );
    assert_eq!(
        out.lines().collect::<Vec<_>>(),
        [
            "EAAG-rust-token",
            "EAAG-rust-token",
            "EAAG-rust-token",
            "old refuses rotated",
            "True"
        ]
    );
}

#[test]
fn keyring_keys_from_python_generate_key_are_accepted_and_bad_keys_are_named() {
    let k = python(
        "from cryptography.fernet import Fernet\nprint(Fernet.generate_key().decode())",
        &[],
    );
    assert_eq!(ring(&[&k]).len(), 1);
    for bad in ["", "short", "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4"] {
        let err = match Keyring::new(&[
            SecretString::from(k.clone()),
            SecretString::from(bad.to_owned()),
        ]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{bad:?} accepted"),
        };
        assert!(err.contains("vault.keys[1]"), "{err}");
        assert!(!err.contains(&k), "{err}");
    }
}
