//! Cutting a secret out of a provider's message: a provider may quote the access token
//! it was given ("Malformed access token EAAG…", a Bot API description with the bot
//! token). Every provider error path runs the decoded message through
//! [`redact_then_truncate`], so neither the whole token nor any long piece of it reaches
//! an answer or a log, however the provider escaped or cut it.

/// What replaces a secret.
pub const REDACTED: &str = "[REDACTED]";

/// Pieces of the secret at least this long are cut out too (a token cut short by the
/// provider, or split across a line).
const MIN_PIECE: usize = 10;

/// Longest message looked at: a provider message is short, a proxy's page is not.
const MAX_SCAN_CHARS: usize = 4096;

/// `message` with the whole `secret`, and every run of at least [`MIN_PIECE`]
/// characters of it, replaced by [`REDACTED`]. A secret shorter than 8 characters is
/// not a token and is left alone.
pub fn redact(message: &str, secret: &str) -> String {
    let secret: Vec<char> = secret.trim().chars().collect();
    if secret.len() < 8 {
        return message.to_owned();
    }
    let min = MIN_PIECE.min(secret.len());
    let text: Vec<char> = message.chars().take(MAX_SCAN_CHARS).collect();
    let mut cut = vec![false; text.len()];
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
/// first, so a cut never leaves part of the secret behind.
pub fn redact_then_truncate(message: &str, secret: &str, max_chars: usize) -> String {
    let clean = redact(message, secret);
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
            redact(&format!("Unauthorized: bot{TOKEN}/sendMessage"), TOKEN),
            "Unauthorized: bot[REDACTED]/sendMessage"
        );
        let piece = &TOKEN[5..25];
        let got = redact(&format!("token {piece}… is malformed"), TOKEN);
        assert_eq!(got, "token [REDACTED]… is malformed");
        // Short coincidences (a few characters shared with the token) stay.
        assert_eq!(redact("error 5000 at AAH", TOKEN), "error 5000 at AAH");
        assert_eq!(redact("short secret", "abc"), "short secret");
    }

    #[test]
    fn redacts_before_truncating() {
        let long = format!("{}{TOKEN}{}", "x".repeat(190), "y".repeat(50));
        let got = redact_then_truncate(&long, TOKEN, 200);
        assert!(!got.contains(&TOKEN[..MIN_PIECE]), "{got}");
        assert!(got.contains(REDACTED), "{got}");
        // Truncating first would have kept the token's first ten characters.
        let naive: String = long.chars().take(200).collect();
        assert!(naive.contains(&TOKEN[..MIN_PIECE]));
    }
}
