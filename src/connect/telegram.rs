//! Telegram: the bot token form. `getMe` checks the token (a refusal: the page says the
//! token is wrong, nothing stored); `getWebhookInfo` warns when the bot already sends
//! its updates elsewhere (connecting takes it over, once the person confirms);
//! `setWebhook` with the relay's URL, a fresh secret and the update kinds it
//! normalizes; then the channel is stored with its webhook secret.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{json, Value};

use super::finish::{self, NewChannel};
use super::flow;
use super::pages;
use super::web::{self, Ctx, Current};
use crate::channels::outbound::SendError;
use crate::channels::telegram::outbound::TelegramEndpoint;
use crate::channels::telegram::webhook::{generate_secret, ALLOWED_UPDATES};
use crate::channels::{ChannelKind, ChannelRef};
use crate::vault::AccessToken;

/// The form (`token` is never echoed back).
#[derive(Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    pub form: String,
    #[serde(default)]
    pub token: Option<SecretString>,
    #[serde(default)]
    pub confirm: Option<String>,
}

/// The page a fresh flow shows.
pub fn page(cur: &Current) -> HttpResponse {
    web::page(
        StatusCode::OK,
        pages::telegram(&flow::form_token(&cur.cookie, &cur.flow), None, None),
    )
}

fn again(cur: &Current, status: StatusCode, problem: &str) -> HttpResponse {
    web::page(
        status,
        pages::telegram(
            &flow::form_token(&cur.cookie, &cur.flow),
            None,
            Some(problem),
        ),
    )
}

/// A well-formed bot token: `<digits>:<35+ of A-Za-z0-9_->`; its bot id.
fn bot_id_of(token: &str) -> Option<&str> {
    let (id, rest) = token.split_once(':')?;
    let ok = !id.is_empty()
        && id.len() <= 20
        && id.bytes().all(|b| b.is_ascii_digit())
        && (20..=100).contains(&rest.len())
        && rest
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    ok.then_some(id)
}

/// `POST /connect/flow/telegram`.
pub async fn submit(ctx: &Ctx<'_>, mut cur: Current, form: TokenForm) -> HttpResponse {
    if !flow::check_form_token(&cur.cookie, &cur.flow, &form.form) {
        return web::refused(flow::FlowRefusal::AlteredState);
    }
    let token = form
        .token
        .as_ref()
        .map(|t| t.expose_secret().trim().to_owned())
        .unwrap_or_default();
    let Some(bot_id) = bot_id_of(&token).map(str::to_owned) else {
        return again(
            &cur,
            StatusCode::BAD_REQUEST,
            "That is not a bot token. It looks like 123456789:AAE… — copy it whole from @BotFather.",
        );
    };
    let token = AccessToken::new(token);
    let endpoint = TelegramEndpoint::from_settings(&ctx.live.settings.telegram);
    let me = match ctx
        .telegram
        .call(&endpoint, &token, "getMe", b"{}".to_vec())
        .await
    {
        Ok(v) => v,
        Err(SendError::Transient(_) | SendError::Indeterminate(_)) => {
            return again(
                &cur,
                StatusCode::BAD_GATEWAY,
                "Telegram could not be reached. Nothing was connected; try again in a moment.",
            )
        }
        Err(e) => {
            tracing::info!(error = %e, "Connect: Telegram refused a bot token.");
            return again(
                &cur,
                StatusCode::BAD_REQUEST,
                "Telegram does not accept this token: it is wrong or was revoked. Nothing was connected. Check it in @BotFather (/mybots → API Token) and paste it again.",
            );
        }
    };
    if me
        .get("id")
        .and_then(Value::as_i64)
        .map(|i| i.to_string())
        .as_deref()
        != Some(&bot_id)
    {
        return again(
            &cur,
            StatusCode::BAD_REQUEST,
            "Telegram answered for another bot than this token names. Nothing was connected.",
        );
    }
    let Ok(channel) = ChannelRef::parse(ChannelKind::Telegram, bot_id.as_str()) else {
        return again(
            &cur,
            StatusCode::BAD_REQUEST,
            "This is not a bot token: it must begin with the bot's numeric id. Nothing was connected.",
        );
    };
    match finish::is_taken(ctx.store, &cur.link, &channel).await {
        Ok(true) => {
            finish::refuse_taken(ctx.store, &cur.link, &channel).await;
            return web::taken();
        }
        Ok(false) => {}
        Err(e) => return web::unavailable(&e),
    }
    let ours = format!("{}/webhooks/telegram/{bot_id}", ctx.live.public_url);
    if form.confirm.as_deref() != Some("1") {
        if let Ok(info) = ctx
            .telegram
            .call(&endpoint, &token, "getWebhookInfo", b"{}".to_vec())
            .await
        {
            let url = info.get("url").and_then(Value::as_str).unwrap_or_default();
            if !url.is_empty() && url != ours {
                let host = url::Url::parse(url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_else(|| "another address".into());
                let warning = format!(
                    "This bot already sends its messages to {host}. Connecting it here takes it over: that service will stop receiving them. Paste the token again to confirm."
                );
                return web::page(
                    StatusCode::OK,
                    pages::telegram(
                        &flow::form_token(&cur.cookie, &cur.flow),
                        Some(&warning),
                        None,
                    ),
                );
            }
        }
    }
    let secret = generate_secret();
    let body = json!({
        "url": ours,
        "secret_token": secret.expose_secret(),
        "allowed_updates": ALLOWED_UPDATES,
        "drop_pending_updates": false,
    });
    if let Err(e) = ctx
        .telegram
        .call(
            &endpoint,
            &token,
            "setWebhook",
            body.to_string().into_bytes(),
        )
        .await
    {
        tracing::warn!(error = %e, "Connect: setWebhook failed.");
        return again(
            &cur,
            StatusCode::BAD_GATEWAY,
            "Telegram did not accept the webhook. Nothing was connected; try again in a moment.",
        );
    }
    let mut new = NewChannel::new(channel, SecretString::from(token.expose().to_owned()));
    new.webhook_secret = Some(secret);
    new.name = me
        .get("first_name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    new.username = me
        .get("username")
        .and_then(Value::as_str)
        .map(str::to_owned);
    web::finished(ctx, &mut cur, &new).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bot_tokens_are_recognised() {
        assert_eq!(
            bot_id_of("7001234567:AAH-telegram-bot-token-9xyzabcdef"),
            Some("7001234567")
        );
        assert_eq!(bot_id_of("abc:AAH-telegram-bot-token-9xyzabcdef"), None);
        assert_eq!(bot_id_of("7001234567"), None);
        assert_eq!(bot_id_of("7001234567:short"), None);
        assert_eq!(
            bot_id_of("7001234567:AAH telegram bot token 9xyzabcdef"),
            None
        );
    }
}
