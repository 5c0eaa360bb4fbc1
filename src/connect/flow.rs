//! One pass through a connect page. Opening a link starts a **flow**: a random 256-bit
//! value in the only cookie the pages set (`HttpOnly`, `SameSite=Lax`, `Secure` on
//! https, expiring with the flow), and, server-side under the cookie's SHA-256, a
//! record of what the flow has got so far (tokens Fernet-encrypted), so a step that
//! fails half way can be retried without logging in again.
//!
//! The OAuth `state` is `{link_id}.{nonce}.{mac}` with `mac` = HMAC-SHA256 keyed with
//! the cookie over the link id and the nonce; the flow keeps the one nonce it handed
//! out and forgets it on the first callback. So a callback without the cookie, with
//! another link's or flow's state, an altered one, or one already used, is refused.
//! Forms carry a token made the same way (`form_token`).

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use super::links::{sha256_hex, Link};
use crate::live::Live;
use crate::store::{Store, StoreBackend, StoreError};

/// The flow cookie's name.
pub const COOKIE: &str = "switchboard_connect";

/// A Facebook Page the person may pick (its token Fernet-encrypted).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PageChoice {
    pub id: String,
    pub name: String,
    pub token: String,
}

/// What a flow has got so far. Tokens are Fernet tokens, never plaintext.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Flow {
    pub link_id: String,
    /// The nonce of the one OAuth `state` handed out and not yet used.
    #[serde(default)]
    pub state_nonce: Option<String>,
    /// Meta logins: the app-scoped id of who logged in.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Messenger: the Pages to pick from.
    #[serde(default)]
    pub pages: Vec<PageChoice>,
    /// The token got by the code exchange (Instagram, WhatsApp), Fernet.
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub expires_at: Option<String>,
    /// Instagram: `user_id` and `username` read with the token.
    #[serde(default)]
    pub account_id: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    /// WhatsApp: the ids of the Embedded Signup session and the steps done.
    #[serde(default)]
    pub waba_id: Option<String>,
    #[serde(default)]
    pub phone_number_id: Option<String>,
    #[serde(default)]
    pub subscribed: bool,
    #[serde(default)]
    pub registered: bool,
    #[serde(default)]
    pub register_attempts: u32,
    /// WhatsApp: the two-step PIN set at registration, Fernet.
    #[serde(default)]
    pub pin: Option<String>,
    /// Set once connected: what the done page calls the channel.
    #[serde(default)]
    pub done: Option<String>,
}

/// Why a callback or form was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowRefusal {
    #[error("the browser sent no connect cookie")]
    NoCookie,
    #[error("the connect session is unknown or has ended")]
    UnknownFlow,
    #[error("the state is missing or malformed")]
    BadState,
    #[error("the state belongs to another link")]
    ForeignState,
    #[error("the state was altered")]
    AlteredState,
    #[error("the state was already used")]
    ReplayedState,
}

fn random(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(&b)
}

fn mac(cookie: &SecretString, parts: &[&str]) -> Hmac<Sha256> {
    // An HMAC key may have any length: this cannot fail.
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(cookie.expose_secret().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    for p in parts {
        m.update(p.as_bytes());
        m.update(b"|");
    }
    m
}

/// The flow's life: `connect.flow_ttl_s`, never past the link's.
pub fn ttl(live: &Live, link: &Link) -> Duration {
    Duration::from_secs(live.settings.connect.flow_ttl_s)
        .min(link.remaining())
        .max(Duration::from_secs(1))
}

/// Starts a flow for a link: the cookie value and the record.
pub async fn start(
    store: &Store,
    live: &Live,
    link: &Link,
) -> Result<(SecretString, Flow), StoreError> {
    let cookie = SecretString::from(random(32));
    let flow = Flow {
        link_id: link.id.clone(),
        ..Flow::default()
    };
    save(store, live, link, &cookie, &flow).await?;
    Ok((cookie, flow))
}

/// Writes the flow record.
pub async fn save(
    store: &Store,
    live: &Live,
    link: &Link,
    cookie: &SecretString,
    flow: &Flow,
) -> Result<(), StoreError> {
    let body = serde_json::to_string(flow).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    store
        .set_ex(
            &store
                .keys()
                .connect_flow(&sha256_hex(cookie.expose_secret())),
            &body,
            ttl(live, link),
        )
        .await
}

/// The flow of a cookie.
pub async fn load(store: &Store, cookie: Option<&SecretString>) -> Result<Flow, LoadError> {
    let cookie = cookie.ok_or(LoadError::Refused(FlowRefusal::NoCookie))?;
    let key = store
        .keys()
        .connect_flow(&sha256_hex(cookie.expose_secret()));
    match store.get(&key).await.map_err(LoadError::Store)? {
        None => Err(LoadError::Refused(FlowRefusal::UnknownFlow)),
        Some(s) => {
            serde_json::from_str(&s).map_err(|_| LoadError::Refused(FlowRefusal::UnknownFlow))
        }
    }
}

/// Why a flow could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Refused(FlowRefusal),
    #[error(transparent)]
    Store(StoreError),
}

/// A fresh OAuth `state` for the flow (it replaces any earlier one).
pub fn new_state(cookie: &SecretString, flow: &mut Flow) -> String {
    let nonce = random(16);
    let tag = mac(cookie, &["state", &flow.link_id, &nonce])
        .finalize()
        .into_bytes();
    flow.state_nonce = Some(nonce.clone());
    format!("{}.{}.{}", flow.link_id, nonce, URL_SAFE_NO_PAD.encode(tag))
}

/// Checks a callback's `state` and uses it up (the caller saves the flow).
pub fn take_state(
    cookie: &SecretString,
    flow: &mut Flow,
    state: Option<&str>,
) -> Result<(), FlowRefusal> {
    let state = state.ok_or(FlowRefusal::BadState)?;
    let mut parts = state.split('.');
    let (Some(link_id), Some(nonce), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(FlowRefusal::BadState);
    };
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| FlowRefusal::BadState)?;
    if link_id != flow.link_id {
        return Err(FlowRefusal::ForeignState);
    }
    mac(cookie, &["state", link_id, nonce])
        .verify_slice(&tag)
        .map_err(|_| FlowRefusal::AlteredState)?;
    if flow.state_nonce.as_deref() != Some(nonce) {
        return Err(FlowRefusal::ReplayedState);
    }
    flow.state_nonce = None;
    Ok(())
}

/// The token a form of this flow carries.
pub fn form_token(cookie: &SecretString, flow: &Flow) -> String {
    URL_SAFE_NO_PAD.encode(
        mac(cookie, &["form", &flow.link_id])
            .finalize()
            .into_bytes(),
    )
}

/// Whether a form's token is this flow's.
pub fn check_form_token(cookie: &SecretString, flow: &Flow, token: &str) -> bool {
    URL_SAFE_NO_PAD.decode(token).ok().is_some_and(|t| {
        mac(cookie, &["form", &flow.link_id])
            .verify_slice(&t)
            .is_ok()
    })
}

/// The `Set-Cookie` value of a flow.
pub fn set_cookie(live: &Live, link: &Link, cookie: &SecretString) -> String {
    let secure = if live.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!(
        "{COOKIE}={}; Path=/connect; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
        cookie.expose_secret(),
        ttl(live, link).as_secs()
    )
}

/// The `Set-Cookie` value that ends a flow.
pub fn clear_cookie(live: &Live) -> String {
    let secure = if live.public_url.starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{COOKIE}=; Path=/connect; Max-Age=0; HttpOnly; SameSite=Lax{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow() -> Flow {
        Flow {
            link_id: "cl_1".into(),
            ..Flow::default()
        }
    }

    #[test]
    fn state_is_bound_to_the_cookie_the_link_and_single_use() {
        let cookie = SecretString::from("c1".to_owned());
        let mut f = flow();
        let state = new_state(&cookie, &mut f);
        let mut replay = f.clone();
        assert_eq!(
            take_state(
                &SecretString::from("c2".to_owned()),
                &mut f.clone(),
                Some(&state)
            ),
            Err(FlowRefusal::AlteredState)
        );
        let mut other = Flow {
            link_id: "cl_2".into(),
            ..f.clone()
        };
        assert_eq!(
            take_state(&cookie, &mut other, Some(&state)),
            Err(FlowRefusal::ForeignState)
        );
        let altered = format!("{}x", &state[..state.len() - 1]);
        assert!(take_state(&cookie, &mut f.clone(), Some(&altered)).is_err());
        assert_eq!(
            take_state(&cookie, &mut f.clone(), None),
            Err(FlowRefusal::BadState)
        );
        assert_eq!(take_state(&cookie, &mut f, Some(&state)), Ok(()));
        assert_eq!(
            take_state(&cookie, &mut f, Some(&state)),
            Err(FlowRefusal::ReplayedState)
        );
        // A newer state replaces the older one.
        let newer = new_state(&cookie, &mut replay);
        assert_eq!(
            take_state(&cookie, &mut replay.clone(), Some(&state)),
            Err(FlowRefusal::ReplayedState)
        );
        assert_eq!(take_state(&cookie, &mut replay, Some(&newer)), Ok(()));
    }

    #[test]
    fn form_tokens_belong_to_their_flow() {
        let cookie = SecretString::from("c1".to_owned());
        let f = flow();
        let t = form_token(&cookie, &f);
        assert!(check_form_token(&cookie, &f, &t));
        assert!(!check_form_token(
            &SecretString::from("c2".to_owned()),
            &f,
            &t
        ));
        assert!(!check_form_token(&cookie, &f, "nope"));
    }
}
