//! The HTML of the connect pages (maud: escaped by construction). Readable on a phone,
//! no framework, no script but the relay's own and, on the WhatsApp page, Meta's SDK.
//! Every page is answered with a strict Content-Security-Policy, `no-store` and
//! `Referrer-Policy: no-referrer`.

use actix_web::http::StatusCode;
use actix_web::HttpResponse;
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::channels::ChannelKind;

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f5f6f8;color:#1c1e21}\
main{max-width:30rem;margin:0 auto;padding:1.5rem}\
.card{background:#fff;border-radius:12px;padding:1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}\
h1{font-size:1.4rem;margin:0 0 1rem}p{line-height:1.5}\
.button,button{display:block;width:100%;box-sizing:border-box;padding:.9rem;margin:.6rem 0;border:0;border-radius:8px;background:#1877f2;color:#fff;font-size:1rem;text-align:center;text-decoration:none;cursor:pointer}\
.secondary{background:#e4e6eb;color:#1c1e21}\
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.8rem;font-size:1rem;border:1px solid #ccd0d5;border-radius:8px}\
label{display:block;margin:.8rem 0 .4rem;font-weight:600}\
.warning{background:#fff4e5;border-left:4px solid #f0a020;padding:.8rem;margin:1rem 0}\
.error{border-left:4px solid #e41e3f}.done{border-left:4px solid #31a24c}\
.hint{color:#65676b;font-size:.9rem}";

/// The label of a kind, for people.
pub fn kind_label(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Whatsapp => "WhatsApp",
        ChannelKind::Instagram => "Instagram",
        ChannelKind::Messenger => "Facebook Messenger",
        ChannelKind::Telegram => "Telegram",
    }
}

fn layout(title: &str, class: &str, body: Markup, scripts: &[&str]) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                main {
                    div class={"card " (class)} { (body) }
                }
                @for s in scripts {
                    script src=(s) {}
                }
            }
        }
    }
}

/// A page answer with the relay's headers. `script_src` and `frame_src` widen the
/// policy (WhatsApp: the SDK's and the dialog's origins).
pub fn respond(
    status: StatusCode,
    page: Markup,
    script_src: &str,
    frame_src: &str,
) -> HttpResponse {
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; script-src 'self' {script_src}; connect-src 'self' {frame_src}; frame-src {frame}; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
        frame = if frame_src.is_empty() { "'none'" } else { frame_src }
    );
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", csp))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("X-Frame-Options", "DENY"))
        .body(page.into_string())
}

/// How a failure page offers to try again.
pub enum Retry<'a> {
    /// Nothing to retry from here.
    None,
    /// A fresh start (a new login): a link.
    Link(&'a str),
    /// Resume from the last step the flow saved, without a new login: a form posting
    /// back to the relay (`action`) with the flow's form token and `fields`.
    Resume {
        action: &'a str,
        form: &'a str,
        fields: &'a [(&'a str, &'a str)],
    },
}

/// What went wrong, and what to do; `retry` is a link to start again.
pub fn error(title: &str, what: &str, todo: &str, retry: Option<&str>) -> Markup {
    error_with(title, what, todo, retry.map_or(Retry::None, Retry::Link))
}

/// What went wrong, what to do, and how to try again.
pub fn error_with(title: &str, what: &str, todo: &str, retry: Retry<'_>) -> Markup {
    layout(
        title,
        "error",
        html! {
            h1 { (title) }
            p id="what" { (what) }
            p id="todo" { (todo) }
            @match retry {
                Retry::None => {}
                Retry::Link(r) => {
                    a class="button" id="retry" href=(r) { "Try again" }
                }
                Retry::Resume { action, form, fields } => {
                    form method="post" action=(action) {
                        input type="hidden" name="form" value=(form);
                        @for (k, v) in fields {
                            input type="hidden" name=(k) value=(v);
                        }
                        button type="submit" id="retry" { "Try again" }
                    }
                }
            }
        },
        &[],
    )
}

/// Done: the channel is connected.
pub fn done(kind: ChannelKind, name: &str, return_url: Option<&str>) -> Markup {
    let body = html! {
        h1 id="done" { (kind_label(kind)) " connected" }
        p { strong { (name) } " is now connected. Messages will arrive in your CRM." }
        @if let Some(u) = return_url {
            meta http-equiv="refresh" content={"2;url=" (u)};
            a class="button" id="continue" href=(u) { "Continue" }
        } @else {
            p class="hint" { "You can close this window." }
        }
    };
    layout("Connected", "done", body, &[])
}

/// Telegram: the bot token form; with `warning`, the bot already sends its updates
/// elsewhere and connecting takes it over.
pub fn telegram(form_token: &str, warning: Option<&str>, problem: Option<&str>) -> Markup {
    let body = html! {
        h1 { "Connect your Telegram bot" }
        p { "Open " strong { "@BotFather" } " in Telegram, send " code { "/mybots" } ", pick your bot and choose " em { "API Token" } ". Paste the token here." }
        @if let Some(p) = problem {
            p class="warning" id="problem" { (p) }
        }
        form method="post" action="/connect/flow/telegram" autocomplete="off" {
            input type="hidden" name="form" value=(form_token);
            @if let Some(w) = warning {
                div class="warning" id="warning" { (w) }
                input type="hidden" name="confirm" value="1";
            }
            label for="token" { "Bot token" }
            input type="password" id="token" name="token" required placeholder="123456789:AA…" spellcheck="false";
            button type="submit" id="connect" { @if warning.is_some() { "Connect anyway" } @else { "Connect" } }
        }
    };
    layout("Connect Telegram", "", body, &[])
}

/// Messenger or Instagram: a button that sends the browser to the login dialog.
pub fn login(kind: ChannelKind, dialog_url: &str) -> Markup {
    let (who, what) = match kind {
        ChannelKind::Instagram => ("Instagram", "your Instagram professional account"),
        _ => ("Facebook", "your Facebook Page"),
    };
    let body = html! {
        h1 { "Connect " (kind_label(kind)) }
        p { "Log in with " (who) " and allow access to " (what) ", so that its messages reach your CRM and your replies reach your customers." }
        a class="button" id="login" href=(dialog_url) { "Continue with " (who) }
        p class="hint" { "You will come back here when you are done." }
    };
    layout(&format!("Connect {}", kind_label(kind)), "", body, &[])
}

/// Messenger: one button per Page.
pub fn page_picker(form_token: &str, pages: &[(String, String)]) -> Markup {
    let body = html! {
        h1 { "Which Page?" }
        p { "You manage several Pages. Pick the one to connect (one at a time)." }
        @for (id, name) in pages {
            form method="post" action="/connect/flow/messenger/page" {
                input type="hidden" name="form" value=(form_token);
                input type="hidden" name="page_id" value=(id);
                button type="submit" class="secondary" data-page=(id) { (name) }
            }
        }
    };
    layout("Pick a Page", "", body, &[])
}

/// WhatsApp: Embedded Signup. The relay's script reads its settings from `data-*`.
pub fn whatsapp(
    form_token: &str,
    app_id: &str,
    config_id: &str,
    version: &str,
    dialog_origin: &str,
    sdk_url: &str,
) -> Markup {
    let body = html! {
        h1 { "Connect WhatsApp" }
        p { "Log in with Facebook, then follow the steps to pick or create your WhatsApp Business Account and verify your phone number." }
        div id="signup" data-app-id=(app_id) data-config-id=(config_id) data-version=(version)
            data-origin=(dialog_origin) data-form=(form_token) {}
        button type="button" id="launch" { "Continue with Facebook" }
        p id="status" class="hint" role="status" {}
    };
    layout(
        "Connect WhatsApp",
        "",
        body,
        &["/connect/assets/whatsapp.js", sdk_url],
    )
}

/// The relay's own script of the WhatsApp page.
pub const WHATSAPP_JS: &str = include_str!("whatsapp.js");
