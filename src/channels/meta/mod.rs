//! What WhatsApp, Instagram and Messenger share, a library their adapters use: the
//! `X-Hub-Signature-256` check ([`signature`]), the Messenger Platform's
//! `messaging[]`/`standby[]`/`changes[]` walk used by Instagram and Messenger
//! ([`messaging`]), the Graph API client and its error mapping ([`graph`], [`errors`])
//! and the app's webhook subscriptions ([`subscription`]). The `{object, entry[]}`
//! envelope that routes a webhook to the product is [`super::meta_webhook`].

pub mod errors;
pub mod graph;
pub mod messaging;
pub mod signature;
pub mod subscription;

pub use signature::{AppSecrets, SignatureError};
