//! Cutting secrets out of a provider's message: a provider may quote the access token
//! it was given ("Malformed access token EAAG…", a Bot API description with the bot
//! token), or a code, app secret or PIN the call carried. Every provider error path
//! (sends, media, revocation, connect flows, token probes) runs the decoded message
//! through [`redact_then_truncate`] with every secret of its call, so none of them, nor
//! any long piece of one, nor anything shaped like a token, reaches an answer or a log,
//! however the provider escaped or cut it.

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Pieces of a secret at least this long are cut out too (a token cut short by the
/// provider, or split across a line).
const MIN_PIECE: usize = 10;

/// Secrets shorter than this are not looked for (nothing shorter is a secret here; a
/// WhatsApp PIN has 6 digits).
const MIN_SECRET: usize = 4;

/// A run of more than this many token characters (letters, digits, `_ - : |`) is cut
/// as token-shaped, even when it is no secret the call knew of.
const MAX_WORD: usize = 40;

/// Longest message looked at: a provider message is short, a proxy's page is not.
const MAX_SCAN_CHARS: usize = 4096;

fn token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '|')
}

/// Marks in `cut` every run of `text` that is a piece of `secret`: the whole secret, or
/// at least [`MIN_PIECE`] characters of it.
fn mark_secret(text: &[char], secret: &str, cut: &mut [bool]) {
    let secret: Vec<char> = secret.trim().chars().collect();
    if secret.len() < MIN_SECRET {
        return;
    }
    let min = MIN_PIECE.min(secret.len());
    for i in 0..text.len() {
        // The longest run of the secret (from any of its positions) starting at `i`.
        let mut best = 0;
        for j in 0..secret.len() {
            let n = text[i..]
                .iter()
                .zip(&secret[j..])
                .take_while(|(a, b)| a == b)
                .count();
            best = best.max(n);
        }
        if best >= min {
            cut[i..i + best].iter_mut().for_each(|c| *c = true);
        }
    }
}

/// Marks every run of more than [`MAX_WORD`] token characters not cut already.
fn mark_token_shaped(text: &[char], cut: &mut [bool]) {
    let mut start = 0;
    for i in 0..=text.len() {
        if i < text.len() && token_char(text[i]) && !cut[i] {
            continue;
        }
        if i - start > MAX_WORD {
            cut[start..i].iter_mut().for_each(|c| *c = true);
        }
        start = i + 1;
    }
}

/// `message` with every secret of `secrets` (whole, and every run of at least
/// [`MIN_PIECE`] characters of it) and every token-shaped word replaced by [`REDACTED`].
pub fn redact(message: &str, secrets: &[&str]) -> String {
    let text: Vec<char> = message.chars().take(MAX_SCAN_CHARS).collect();
    let mut cut = vec![false; text.len()];
    for s in secrets {
        mark_secret(&text, s, &mut cut);
    }
    mark_token_shaped(&text, &mut cut);
    let mut out = String::with_capacity(text.len());
    let mut in_cut = false;
    for (c, is_cut) in text.iter().zip(&cut) {
        match (*is_cut, in_cut) {
            (true, false) => out.push_str(REDACTED),
            (true, true) => {}
            (false, _) => out.push(*c),
        }
        in_cut = *is_cut;
    }
    out
}

/// [`redact`], then at most `max_chars` characters (with `…` when cut): redacting
/// first, so a cut never leaves part of a secret behind.
pub fn redact_then_truncate(message: &str, secrets: &[&str], max_chars: usize) -> String {
    let clean = redact(message, secrets);
    if clean.chars().count() <= max_chars {
        return clean;
    }
    let mut s: String = clean.chars().take(max_chars).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "5000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw";

    #[test]
    fn whole_token_and_long_pieces_are_cut() {
        assert_eq!(
            redact(&format!("Unauthorized: bot{TOKEN}/sendMessage"), &[TOKEN]),
            "Unauthorized: bot[REDACTED]/sendMessage"
        );
        let piece = &TOKEN[5..25];
        let got = redact(&format!("token {piece}… is malformed"), &[TOKEN]);
        assert_eq!(got, "token [REDACTED]… is malformed");
        // Short coincidences (a few characters shared with the token) stay.
        assert_eq!(redact("error 5000 at AAH", &[TOKEN]), "error 5000 at AAH");
        assert_eq!(redact("short secret abc", &["abc"]), "short secret abc");
    }

    #[test]
    fn every_secret_of_the_call_is_cut_even_short_ones() {
        let got = redact(
            "code AQBx-oauth-code-77 for app s3cr3t-app-secret, pin 123456",
            &["AQBx-oauth-code-77", "s3cr3t-app-secret", "123456"],
        );
        assert_eq!(got, "code [REDACTED] for app [REDACTED], pin [REDACTED]");
    }

    #[test]
    fn token_shaped_words_are_cut_without_being_known() {
        let long = format!("token {} leaked", "E".repeat(60));
        assert_eq!(redact(&long, &[]), "token [REDACTED] leaked");
        let url = "see https://developers.facebook.com/docs/graph-api/reference/user/permissions/";
        assert_eq!(redact(url, &[]), url);
    }

    #[test]
    fn redacts_before_truncating() {
        let long = format!("{} {TOKEN} {}", "x y".repeat(70), "y".repeat(30));
        let got = redact_then_truncate(&long, &[TOKEN], 230);
        assert!(!got.contains(&TOKEN[..MIN_PIECE]), "{got}");
        assert!(got.contains(REDACTED), "{got}");
        // Truncating first would have kept the token's first ten characters.
        let naive: String = long.chars().take(230).collect();
        assert!(naive.contains(&TOKEN[..MIN_PIECE]));
    }
}
