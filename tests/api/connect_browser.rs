//! The connect pages in a real headless Chromium, clicked through as a business would:
//! the link opened, a bot token typed, the Facebook and Instagram login dialogs (local
//! stand-ins that send the browser back with a code), the Page picker, and WhatsApp
//! Embedded Signup with a stand-in SDK whose popup posts `WA_EMBEDDED_SIGNUP` from the
//! dialog's origin (and a foreign frame posting its own ids, which must be ignored);
//! a failed step, then "Try again" clicked, resuming without a new login.
//! Asserted: what the providers received, what Redis holds (decrypted by Python's
//! `cryptography`), the CRM's `channel.connected` (verified with `standardwebhooks`),
//! the flow cookie's attributes, and no token, code or secret in any page or URL.
//! Screenshots land in `$CARGO_TARGET_TMPDIR/screenshots` (and `SCREENSHOT_DIR`).

use std::collections::HashMap;

use serde_json::{json, Value};
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::connect_flows::{
    assert_clean, connected_event, hget, link_status, mock_messenger, mock_telegram, urlencode,
};
use crate::connect_links::create_link;
use crate::helpers::*;

const BOT_TOKEN: &str = "7001234567:AAH-telegram-bot-token-9xyzabcdefgh";
const BOT_ID: &str = "7001234567";

/// A relay a browser can reach, whose links may return to the CRM peer (127.0.0.1).
async fn relay(meta: &str, extra: &str) -> TestApp {
    let app = TestApp::builder()
        .reachable()
        .meta(meta)
        .toml(&format!(
            "[connect]\nreturn_url_hosts = [\"127.0.0.1\"]\n{extra}"
        ))
        .spawn()
        .await;
    Mock::given(method("GET"))
        .and(path("/channels"))
        .respond_with(html("<h1 id=\"crm\">Back in the CRM</h1>"))
        .mount(&app.crm)
        .await;
    app
}

fn html(body: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(
        format!("<!doctype html><meta name=viewport content=\"width=device-width\"><body style=\"font-family:sans-serif\">{body}</body>"),
        "text/html; charset=utf-8",
    )
}

async fn new_link(app: &TestApp, kind: &str) -> Value {
    let body = json!({"kind": kind, "external_ref": format!("{kind}-draft"),
                      "return_url": format!("{}/channels", app.crm.uri())});
    let resp = create_link(app, API_KEY, body).await;
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

/// The token in Redis, decrypted by Python's `cryptography` with the relay's key.
fn python_decrypt(app: &TestApp, key: &str, field: &str) -> String {
    python(
        "import sys\nfrom cryptography.fernet import Fernet\nprint(Fernet(sys.argv[1]).decrypt(sys.argv[2].encode()).decode())",
        &[&app.vault_key, &hget(app, key, field)],
    )
}

/// The flow cookie as the browser holds it: HttpOnly, SameSite=Lax, not Secure on http.
async fn assert_flow_cookie(b: &Browser) {
    let cookies = b.cookies().await;
    let names: Vec<&str> = cookies.iter().map(|c| c.name()).collect();
    assert_eq!(
        names,
        ["switchboard_connect"],
        "the flow's is the only cookie"
    );
    let c = &cookies[0];
    assert_eq!(c.http_only(), Some(true));
    assert_eq!(c.same_site().map(|s| s.to_string()).as_deref(), Some("Lax"));
    assert_ne!(c.secure(), Some(true));
}

/// A login dialog stand-in (Facebook's or Instagram's): "Continue" sends the browser to
/// `redirect_uri` with `code` and the relay's `state`; "Cancel" with an error.
struct LoginDialog {
    who: &'static str,
    code: &'static str,
}

impl Respond for LoginDialog {
    fn respond(&self, req: &Request) -> ResponseTemplate {
        let q: HashMap<String, String> = req.url.query_pairs().into_owned().collect();
        let (Some(back), Some(state)) = (q.get("redirect_uri"), q.get("state")) else {
            return ResponseTemplate::new(400);
        };
        let state = urlencode(state);
        html(&format!(
            "<h1>{who}</h1><p>Switchboard Relay would like to manage your messages.</p>\
             <a id=\"allow\" href=\"{back}?code={code}&state={state}\">Continue as Ada</a><br>\
             <a id=\"deny\" href=\"{back}?error=access_denied&error_reason=user_denied&state={state}\">Cancel</a>",
            who = self.who,
            code = self.code,
        ))
    }
}

#[tokio::test]
async fn telegram_bot_token_typed_into_the_page_connects_the_bot() {
    let app = relay("", "").await;
    mock_telegram(&app, "").await;
    let link = new_link(&app, "telegram").await;
    let url = link["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/connect/", app.address)),
        "{url}"
    );
    let secret = url.rsplit('/').next().unwrap();

    let b = Browser::start().await;
    b.goto(url).await;
    b.wait_for("#token").await;
    assert_flow_cookie(&b).await;
    b.screenshot("telegram-1-token").await;
    b.type_into("#token", BOT_TOKEN).await;
    b.click("#connect").await;
    let done = b.text("#done").await;
    assert_eq!(done, "Telegram connected");
    assert!(b.html().await.contains("Acme Support"));
    b.screenshot("telegram-2-connected").await;
    assert_clean(&b.html().await, &[BOT_TOKEN, secret]);
    assert_clean(b.url().await.as_str(), &[BOT_TOKEN]);
    // "Continue" (or the page's own refresh) takes the person back to the CRM.
    b.click("#continue").await;
    b.wait_for("#crm").await;
    b.wait_for_url(&format!("{}/channels", app.crm.uri())).await;
    b.close().await;

    let set = app
        .telegram
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.url.path().ends_with("/setWebhook"))
        .expect("setWebhook called");
    let body: Value = serde_json::from_slice(&set.body).unwrap();
    assert_eq!(
        body["url"],
        format!("{}/webhooks/telegram/{BOT_ID}", app.address)
    );
    let key = format!("switchboard:channel:telegram:{BOT_ID}");
    assert_eq!(python_decrypt(&app, &key, "token"), BOT_TOKEN);
    assert_eq!(
        python_decrypt(&app, &key, "webhook_secret"),
        body["secret_token"].as_str().unwrap()
    );
    let event = connected_event(&app).await;
    assert_eq!(event["channel"], json!({"kind": "telegram", "id": BOT_ID}));
    assert_eq!(event["data"]["external_ref"], "telegram-draft");
    assert_eq!(
        link_status(&app, link["id"].as_str().unwrap()).await["status"],
        "connected"
    );
}

#[tokio::test]
async fn messenger_login_through_the_dialog_and_the_page_picker() {
    let dialog = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/dialog/oauth"))
        .respond_with(LoginDialog {
            who: "Facebook",
            code: "fb-code-123",
        })
        .mount(&dialog)
        .await;
    let app = relay(
        &format!(
            "app_id = \"1234567890\"\nlogin_config_id = \"login-config-1\"\noauth_dialog_base = \"{}\"",
            dialog.uri()
        ),
        "",
    )
    .await;
    mock_messenger(
        &app,
        json!([
            {"id": "111", "name": "Acme Shoes", "access_token": "EAApage-111-token"},
            {"id": "222", "name": "Acme Hats", "access_token": "EAApage-222-token"}
        ]),
    )
    .await;
    // The read-back lists this app (by the id the relay is configured with).
    Mock::given(method("GET"))
        .and(path("/v23.0/222/subscribed_apps"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": "1234567890", "name": "Switchboard", "subscribed_fields": ["messages","messaging_postbacks","message_reactions","message_reads","message_deliveries","messaging_optins","messaging_referrals","message_edits","message_echoes"]}]})))
        .with_priority(1)
        .mount(&app.graph)
        .await;
    let link = new_link(&app, "messenger").await;

    let b = Browser::start().await;
    b.goto(link["url"].as_str().unwrap()).await;
    b.wait_for("#login").await;
    assert_flow_cookie(&b).await;
    b.screenshot("messenger-1-login").await;
    b.click("#login").await;
    // At the (stand-in) Facebook dialog, then back at the relay with a code.
    let at_dialog = b.wait_for_url(&dialog.uri()).await;
    let q: HashMap<_, _> = at_dialog.query_pairs().into_owned().collect();
    assert_eq!(
        q["redirect_uri"],
        format!("{}/connect/callback/facebook", app.address)
    );
    assert_eq!(q["client_id"], "1234567890");
    b.click("#allow").await;
    b.wait_for("button[data-page=\"222\"]").await;
    b.screenshot("messenger-2-pick-a-page").await;
    let picker = b.html().await;
    assert!(picker.contains("Acme Shoes") && picker.contains("Acme Hats"));
    assert_clean(&picker, &["EAApage", "EAAlong", "EAAshort", "fb-code-123"]);
    b.click("button[data-page=\"222\"]").await;
    assert_eq!(b.text("#done").await, "Facebook Messenger connected");
    b.screenshot("messenger-3-connected").await;
    let done = b.html().await;
    assert!(done.contains("Acme Hats"));
    assert_clean(&done, &["EAApage", "EAAlong", "fb-code-123"]);
    assert_clean(b.url().await.as_str(), &["fb-code-123", "EAA"]);
    b.close().await;

    let key = "switchboard:channel:messenger:222";
    assert_eq!(python_decrypt(&app, key, "token"), "EAApage-222-token");
    assert_eq!(hget(&app, key, "user_id"), "10158000000000001");
    let event = connected_event(&app).await;
    assert_eq!(event["channel"], json!({"kind": "messenger", "id": "222"}));
    assert_eq!(event["data"]["display"]["name"], "Acme Hats");
}

#[tokio::test]
async fn a_denied_facebook_login_is_a_clear_page_and_stores_nothing() {
    let dialog = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/dialog/oauth"))
        .respond_with(LoginDialog {
            who: "Facebook",
            code: "fb-code-123",
        })
        .mount(&dialog)
        .await;
    let app = relay(
        &format!(
            "app_id = \"1234567890\"\nlogin_config_id = \"login-config-1\"\noauth_dialog_base = \"{}\"",
            dialog.uri()
        ),
        "",
    )
    .await;
    mock_messenger(&app, json!([])).await;
    let link = new_link(&app, "messenger").await;
    let b = Browser::start().await;
    b.goto(link["url"].as_str().unwrap()).await;
    b.click("#login").await;
    b.click("#deny").await;
    let what = b.text("#what").await;
    assert!(what.contains("cancelled"), "{what}");
    b.wait_for("#todo").await;
    b.wait_for("#retry").await;
    b.screenshot("messenger-denied").await;
    b.close().await;
    assert!(app
        .graph
        .received_requests()
        .await
        .unwrap()
        .iter()
        .all(|r| !r.url.path().ends_with("/oauth/access_token")));
    assert!(app
        .redis()
        .cli(&["KEYS", "switchboard:channel:messenger:*"])
        .trim()
        .is_empty());
}

#[tokio::test]
async fn instagram_login_through_the_instagram_dialog() {
    let ig = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/oauth/authorize"))
        .respond_with(LoginDialog {
            who: "Instagram",
            code: "ig-code-9",
        })
        .mount(&ig)
        .await;
    crate::connect_flows::mock_instagram(&ig).await;
    let app = relay(
        "",
        &format!(
            "[instagram]\napp_id = \"ig-app-1\"\napp_secrets = [\"ig-secret-1\"]\noauth_base = \"{0}\"\napi_base = \"{0}\"\ngraph_base = \"{0}\"\n",
            ig.uri()
        ),
    )
    .await;
    let link = new_link(&app, "instagram").await;
    let b = Browser::start().await;
    b.goto(link["url"].as_str().unwrap()).await;
    b.wait_for("#login").await;
    b.screenshot("instagram-1-login").await;
    b.click("#login").await;
    b.wait_for_url(&format!("{}/oauth/authorize", ig.uri()))
        .await;
    b.click("#allow").await;
    assert_eq!(b.text("#done").await, "Instagram connected");
    b.screenshot("instagram-2-connected").await;
    assert_clean(&b.html().await, &["IGlong", "IGshort", "ig-code-9"]);
    b.close().await;
    let key = "switchboard:channel:instagram:17841400000000099";
    assert_eq!(python_decrypt(&app, key, "token"), "IGlong-token");
    assert_eq!(hget(&app, key, "graph"), "instagram");
    let event = connected_event(&app).await;
    assert_eq!(event["data"]["display"]["username"], "acme.shop");
}

/// The Facebook JS SDK stand-in: `FB.init` records its options, `FB.login` (from the
/// click) opens the signup dialog as a popup and answers the callback with a code once
/// the dialog's origin has posted its `WA_EMBEDDED_SIGNUP` message.
const SDK_JS: &str = r#"
window.FB = {
  init: function (o) { window.fbInitOptions = o; },
  login: function (cb, opts) {
    window.fbLoginOptions = opts;
    window.open(DIALOG + "/signup?config_id=" + encodeURIComponent(opts.config_id), "fbdialog", "width=420,height=640");
    window.addEventListener("message", function (e) {
      if (e.origin !== DIALOG) { return; }
      var d = typeof e.data === "string" ? JSON.parse(e.data) : e.data;
      if (d.type === "WA_EMBEDDED_SIGNUP" && d.event === "FINISH") {
        setTimeout(function () { cb({ status: "connected", authResponse: { code: "wa-code-1" } }); }, 300);
      }
    });
  }
};
if (window.fbAsyncInit) { window.fbAsyncInit(); }
"#;

/// The signup popup: "Finish" posts the real ids to the opener, then tells a frame from
/// another origin to post its own (a page the person has open must not inject ids).
const SIGNUP_HTML: &str = r#"<h1>WhatsApp Business</h1><p>Acme · +1 555 010 9999</p>
<button id="finish">Finish</button>
<iframe id="evil" src="EVIL/frame" style="display:none"></iframe>
<script>
document.getElementById("finish").addEventListener("click", function () {
  window.opener.postMessage(JSON.stringify({type: "WA_EMBEDDED_SIGNUP", event: "FINISH",
    data: {phone_number_id: "106540352249999", waba_id: "102290129340398"}}), "*");
  document.getElementById("evil").contentWindow.postMessage("go", "*");
  setTimeout(function () { window.close(); }, 100);
});
</script>"#;

const EVIL_HTML: &str = r#"<script>
window.addEventListener("message", function () {
  window.parent.opener.postMessage(JSON.stringify({type: "WA_EMBEDDED_SIGNUP", event: "FINISH",
    data: {phone_number_id: "999999999999999", waba_id: "888888888888888"}}), "*");
});
</script>"#;

#[tokio::test]
async fn whatsapp_embedded_signup_with_the_sdk_popup_ignores_other_origins() {
    let dialog = MockServer::start().await;
    let sdk = MockServer::start().await;
    let evil = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/en_US/sdk.js"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            SDK_JS.replace("DIALOG", &format!("{:?}", dialog.uri())),
            "application/javascript",
        ))
        .mount(&sdk)
        .await;
    Mock::given(method("GET"))
        .and(path("/signup"))
        .and(query_param("config_id", "wa-config-1"))
        .respond_with(html(&SIGNUP_HTML.replace("EVIL", &evil.uri())))
        .mount(&dialog)
        .await;
    Mock::given(method("GET"))
        .and(path("/frame"))
        .respond_with(html(EVIL_HTML))
        .mount(&evil)
        .await;
    let app = relay(
        &format!(
            "app_id = \"1234567890\"\nwhatsapp_config_id = \"wa-config-1\"\noauth_dialog_base = \"{}\"\nsdk_url = \"{}/en_US/sdk.js\"",
            dialog.uri(),
            sdk.uri()
        ),
        "",
    )
    .await;
    // The first registration fails: the person clicks "Try again", which resumes
    // from the saved steps (no new login, no new code).
    crate::connect_flows::mock_whatsapp_signup(&app, true).await;
    let link = new_link(&app, "whatsapp").await;

    let b = Browser::start().await;
    b.goto(link["url"].as_str().unwrap()).await;
    b.wait_for("#launch").await;
    assert_flow_cookie(&b).await;
    b.screenshot("whatsapp-1-start").await;
    let init = b
        .client
        .execute("return window.fbInitOptions || null;", vec![])
        .await
        .unwrap();
    assert_eq!(init["appId"], "1234567890");
    assert_eq!(init["version"], "v23.0");
    let main = b.client.window().await.unwrap();
    b.click("#launch").await;
    // The person finishes in the popup.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let popup = loop {
        let windows = b.client.windows().await.unwrap();
        if let Some(w) = windows.into_iter().find(|w| *w != main) {
            break w;
        }
        assert!(std::time::Instant::now() < deadline, "no signup popup");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    b.client.switch_to_window(popup).await.unwrap();
    b.click("#finish").await;
    b.client.switch_to_window(main).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let status = b.text("#status").await;
        if status.contains("registering the number") {
            assert!(status.contains("try again"), "{status}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "status: {status}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(b.text("#launch").await, "Try again");
    b.screenshot("whatsapp-1b-try-again").await;
    b.click("#launch").await;
    assert_eq!(b.text("#done").await, "WhatsApp connected");
    b.screenshot("whatsapp-2-connected").await;
    assert_clean(&b.html().await, &["EAAbusiness", "wa-code-1"]);
    b.close().await;

    let reqs = app.graph.received_requests().await.unwrap();
    // One login (one popup, one code exchanged), two registrations.
    let popups = dialog.received_requests().await.unwrap();
    assert_eq!(
        popups.iter().filter(|r| r.url.path() == "/signup").count(),
        1
    );
    let count = |p: &str| {
        reqs.iter()
            .filter(|r| format!("{} {}", r.method, r.url.path()) == p)
            .count()
    };
    assert_eq!(count("GET /v23.0/oauth/access_token"), 1);
    assert_eq!(count("POST /v23.0/106540352249999/register"), 2);
    assert_eq!(
        hget(
            &app,
            "switchboard:channel:whatsapp:106540352249999",
            "user_id"
        ),
        crate::connect_flows::WA_USER_ID
    );
    let paths: Vec<String> = reqs
        .iter()
        .map(|r| format!("{} {}", r.method, r.url.path()))
        .collect();
    assert!(
        paths
            .iter()
            .all(|p| !p.contains("999999999999999") && !p.contains("888888888888888")),
        "the foreign frame's ids reached Graph: {paths:?}"
    );
    assert!(
        paths.contains(&"POST /v23.0/102290129340398/subscribed_apps".to_owned()),
        "{paths:?}"
    );
    let key = "switchboard:channel:whatsapp:106540352249999";
    assert_eq!(python_decrypt(&app, key, "token"), "EAAbusiness-token");
    assert_eq!(hget(&app, key, "waba_id"), "102290129340398");
    let pin = python_decrypt(&app, key, "pin");
    assert!(pin.len() == 6 && pin.bytes().all(|c| c.is_ascii_digit()));
    let event = connected_event(&app).await;
    assert_eq!(
        event["channel"],
        json!({"kind": "whatsapp", "id": "106540352249999"})
    );
    assert_eq!(event["data"]["waba_id"], "102290129340398");
}
