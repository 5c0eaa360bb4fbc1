//! # Switchboard
//!
//! A stateless relay between messaging channels (WhatsApp, Instagram, Messenger,
//! Telegram) and CRMs. Webhooks come in, are verified over their raw bytes, normalized
//! into one channel-agnostic [`event::Event`], and POSTed to the tenant's CRM signed per
//! Standard Webhooks. CRMs reply through `POST /v1/messages`, which sends through the
//! channel's own API with the channel's token, kept Fernet-encrypted in the store.
//!
//! ## Layout
//!
//! - [`config`]: settings, layered TOML + environment, `…_file` secrets, validation.
//! - [`live`]: the reloadable part of the config, swapped atomically; [`reload`] swaps it.
//! - [`app`]: builds and runs the HTTP server and background tasks (used by tests too).
//! - [`http`]: routes only (webhooks, health, errors as problem+json).
//! - [`channels`]: one adapter per channel; inbound normalization is pure.
//! - [`event`]: the normalized event (the contract's envelope).
//! - [`delivery`]: routing, dedupe, Standard Webhooks signing, the CRM client, the
//!   encrypted retry buffer (Redis Streams) and its worker, per-tenant circuit breakers.
//!   `ARCHITECTURE.md` has the data flow and the Redis design.
//! - [`privacy`]: Meta's deauthorize and data-deletion callbacks, revocation, and what
//!   the relay keeps for how long.
//! - [`replies`]: `POST /v1/messages` and the media proxy: auth, channel, token,
//!   send with retries, idempotency.
//! - [`registry`]: the channel records behind the admin API and the CLI (put, list,
//!   delete, open), encrypting on the way in.
//! - [`vault`]: the Fernet keyring; re-encryption under the primary key
//!   (`vault rotate`).
//! - [`store`]: Redis (single or cluster) and memory backends; every key in [`store::keys`].
//! - [`connect`]: connect links and the pages on which a business connects a channel.
//! - [`telemetry`]: logs and metrics.

pub mod app;
pub mod channel;
pub mod channels;
pub mod config;
pub mod connect;
pub mod delivery;
pub mod event;
pub mod http;
pub mod live;
pub mod privacy;
pub mod registry;
pub mod reload;
pub mod replies;
pub mod signing;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenant;
pub mod time;
pub mod vault;
