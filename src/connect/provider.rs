//! The HTTP calls of the connect flows (Graph API OAuth, Instagram, Embedded Signup
//! steps). One pooled client, no redirects, a deadline per call. A provider's refusal
//! keeps only its code and a message with every secret the call carried cut out;
//! transport errors never carry the URL (its query may hold a code or a secret).

use std::time::Duration;

use reqwest::header::AUTHORIZATION;
use serde_json::Value;

use crate::channels::meta::graph::build_http;
use crate::redact::redact_then_truncate;
use crate::vault::AccessToken;

/// The largest provider answer read.
const MAX_ANSWER_BYTES: usize = 512 * 1024;

/// Longest provider message kept.
const MAX_MESSAGE: usize = 300;

/// Why a provider call failed. Never carries a token, code or secret.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The provider answered with an error.
    #[error("the provider refused (HTTP {status}, code {code:?}): {message}")]
    Refused {
        status: u16,
        code: Option<i64>,
        message: String,
    },
    /// No usable answer.
    #[error("the provider could not be reached: {0}")]
    Unreachable(String),
}

impl ProviderError {
    /// Graph's code 190: the token is expired or revoked.
    pub fn is_token_invalid(&self) -> bool {
        matches!(
            self,
            ProviderError::Refused {
                code: Some(190),
                ..
            }
        )
    }
}

/// The pooled client of the connect flows.
#[derive(Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
}

/// One call: what to send, and which values in it are secret (cut out of any message).
pub struct Call<'a> {
    pub url: String,
    pub query: Vec<(&'a str, &'a str)>,
    pub form: Option<Vec<(&'a str, &'a str)>>,
    pub json: Option<Value>,
    pub bearer: Option<&'a AccessToken>,
    pub secrets: Vec<&'a str>,
    pub timeout: Duration,
}

impl<'a> Call<'a> {
    pub fn get(url: String, timeout: Duration) -> Self {
        Self {
            url,
            query: Vec::new(),
            form: None,
            json: None,
            bearer: None,
            secrets: Vec::new(),
            timeout,
        }
    }

    /// A POST with a form body (empty when `form` is `[]`).
    pub fn post(url: String, timeout: Duration, form: Vec<(&'a str, &'a str)>) -> Self {
        Self {
            form: Some(form),
            ..Self::get(url, timeout)
        }
    }

    /// A POST with a JSON body.
    pub fn post_json(url: String, timeout: Duration, body: Value) -> Self {
        Self {
            json: Some(body),
            ..Self::get(url, timeout)
        }
    }

    pub fn query(mut self, k: &'a str, v: &'a str) -> Self {
        self.query.push((k, v));
        self
    }

    /// A query value that is secret (a code, a client secret, a token).
    pub fn secret_query(mut self, k: &'a str, v: &'a str) -> Self {
        self.query.push((k, v));
        self.secrets.push(v);
        self
    }

    pub fn bearer(mut self, token: &'a AccessToken) -> Self {
        self.bearer = Some(token);
        self.secrets.push(token.expose());
        self
    }

    pub fn secret(mut self, v: &'a str) -> Self {
        self.secrets.push(v);
        self
    }
}

impl OAuthClient {
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self {
            http: build_http(Duration::from_secs(30))?,
        })
    }

    /// Runs a call; the JSON answer on 2xx.
    pub async fn send(&self, call: Call<'_>) -> Result<Value, ProviderError> {
        let mut req = match (&call.form, &call.json) {
            (_, Some(json)) => self.http.post(&call.url).json(json),
            (Some(form), None) => self.http.post(&call.url).form(form),
            (None, None) => self.http.get(&call.url),
        };
        if !call.query.is_empty() {
            req = req.query(&call.query);
        }
        if let Some(t) = call.bearer {
            req = req.header(AUTHORIZATION, format!("Bearer {}", t.expose()));
        }
        let resp = req
            .timeout(call.timeout)
            .send()
            .await
            .map_err(|e| ProviderError::Unreachable(e.without_url().to_string()))?;
        let status = resp.status().as_u16();
        let bytes = read_capped(resp).await?;
        let body: Option<Value> = serde_json::from_slice(&bytes).ok();
        match body {
            Some(v) if (200..300).contains(&status) && v.get("error").is_none() => Ok(v),
            Some(v) => Err(refusal(status, &v, &call.secrets)),
            None if status >= 500 => Err(ProviderError::Unreachable(format!("HTTP {status}"))),
            None => Err(ProviderError::Refused {
                status,
                code: None,
                message: format!("HTTP {status} without a JSON answer"),
            }),
        }
    }
}

async fn read_capped(mut resp: reqwest::Response) -> Result<Vec<u8>, ProviderError> {
    let mut out = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| ProviderError::Unreachable(e.without_url().to_string()))?
    {
        if out.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(ProviderError::Unreachable("the answer is too large".into()));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Graph (`{"error": {"message", "code"}}`) and Instagram
/// (`{"error_type", "code", "error_message"}`) error shapes.
fn refusal(status: u16, v: &Value, secrets: &[&str]) -> ProviderError {
    let err = v.get("error").filter(|e| e.is_object()).unwrap_or(v);
    let code = err.get("code").and_then(Value::as_i64);
    let message = err
        .get("message")
        .or_else(|| err.get("error_message"))
        .or_else(|| v.get("error_description"))
        .and_then(Value::as_str)
        .unwrap_or("no message");
    ProviderError::Refused {
        status,
        code,
        message: redact_then_truncate(message, secrets, MAX_MESSAGE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_keep_the_code_and_lose_the_secrets() {
        let v = serde_json::json!({"error": {"message": "Invalid code abc123secret", "code": 100}});
        let e = refusal(400, &v, &["abc123secret"]);
        assert!(!e.to_string().contains("abc123secret"), "{e}");
        assert!(matches!(
            e,
            ProviderError::Refused {
                code: Some(100),
                ..
            }
        ));
        let ig = serde_json::json!({"error_type": "OAuthException", "code": 400, "error_message": "Matching code was not found or was already used"});
        assert!(refusal(400, &ig, &[]).to_string().contains("Matching code"));
        let long =
            serde_json::json!({"error": {"message": format!("token {} leaked", "E".repeat(60))}});
        assert!(!refusal(400, &long, &[]).to_string().contains("EEEE"));
        let pin = serde_json::json!({"error": {"message": "PIN 123456 is wrong", "code": 133005}});
        assert!(!refusal(400, &pin, &["123456"])
            .to_string()
            .contains("123456"));
    }
}
