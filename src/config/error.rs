//! [`ConfigError`]: a configuration that cannot be used, named by its key; what is wrong
//! with a value is described by its kind, never by the value itself (it may be a secret).

/// A configuration that cannot be used, with the key at fault.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration could not be read: {0}")]
    Read(String),
    #[error("configuration key `{key}`: {message}")]
    Invalid { key: String, message: String },
}

impl ConfigError {
    /// A parse error without the source lines the TOML parser quotes (`3 | keys = …`):
    /// the offending line may hold a secret, and this message is logged.
    pub(super) fn read(e: &config::ConfigError) -> Self {
        let text = e.to_string();
        let kept: Vec<&str> = text
            .lines()
            .filter(|l| {
                let t = l.trim_start();
                !(t.starts_with('|')
                    || t.split_once(" |")
                        .is_some_and(|(n, _)| n.chars().all(|c| c.is_ascii_digit())))
            })
            .collect();
        Self::Read(kept.join("\n"))
    }

    pub(crate) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// What is wrong with a key's value, never the value itself (it may be a secret put
/// under the wrong key, or a secret list written as one string): the expected type and
/// the kind of value found.
pub(super) fn describe(e: &config::ConfigError) -> String {
    use config::ConfigError as E;
    match e {
        E::Type {
            unexpected,
            expected,
            ..
        } => {
            format!(
                "expected {}, found {}",
                toml_words(expected),
                kind_of(&unexpected.to_string())
            )
        }
        E::At { error, .. } => describe(error),
        // serde's own messages that name keys, not values.
        E::Message(m) if m.starts_with("unknown field") || m.starts_with("missing field") => {
            m.clone()
        }
        // "unknown variant `<value>`, expected one of `a`, `b`": keep what is expected.
        E::Message(m) if m.starts_with("unknown variant") => match m.rsplit_once(", expected ") {
            Some((_, allowed)) => format!("not an accepted value (expected {allowed})"),
            None => "not an accepted value".to_owned(),
        },
        E::Message(m) if m.contains("does not have variant constructor") => {
            "not an accepted value (config/default.toml lists them)".to_owned()
        }
        // serde's "invalid type: string \"<value>\", expected a sequence" (and "invalid
        // value", "invalid length"): the kind found and what is expected, not the value.
        E::Message(m) if m.starts_with("invalid ") => {
            let found = m
                .strip_prefix("invalid type: ")
                .or_else(|| m.strip_prefix("invalid value: "))
                .map(kind_of);
            match (m.rsplit_once(", expected "), found) {
                (Some((_, expected)), Some(found)) => {
                    format!("expected {}, found {found}", toml_words(expected))
                }
                (Some((_, expected)), None) => format!("expected {}", toml_words(expected)),
                _ => "a value of the wrong type".to_owned(),
            }
        }
        _ => "a value of the wrong type (config/default.toml shows the expected one)".to_owned(),
    }
}

/// The kind of a value found in the config, from the start of serde's (or the config
/// crate's) description of it ("string \"…\"", "integer `…`", "sequence"); only that
/// start is matched, the value after it is never echoed.
fn kind_of(found: &str) -> &'static str {
    let known = [
        ("boolean", "a boolean"),
        ("integer", "an integer"),
        ("64-bit", "an integer"),
        ("128-bit", "an integer"),
        ("floating", "a float"),
        ("string", "a string"),
        ("character", "a string"),
        ("unit", "nothing"),
        ("sequence", "a list"),
        ("map", "a table"),
    ];
    known
        .iter()
        .find(|(start, _)| found.starts_with(start))
        .map_or("another type", |(_, kind)| kind)
}

/// serde's names for TOML's: a sequence is a list, a map a table.
fn toml_words(expected: &str) -> String {
    expected
        .replace("a sequence", "a list")
        .replace("a map", "a table")
}
