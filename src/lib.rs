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
//! Imports run one way, from the edge down (`ARCHITECTURE.md` has the map):
//!
//! - [`app`]: builds and runs the HTTP server and background tasks (used by tests too);
//!   [`reload`] swaps the live config and writes `[[channels]]` into the store.
//! - [`http`]: routes only (parse, call the module, answer; errors as problem+json),
//!   over the shared [`state::AppState`].
//! - [`replies`]: `POST /v1/messages` and the media proxy: auth, channel, token,
//!   idempotency, send with retries. [`privacy`]: Meta's deauthorize and data-deletion
//!   callbacks, revocation, and what the relay keeps for how long. [`connect`]:
//!   connect links and the pages on which a business connects a channel. [`tokens`]:
//!   token health (refresh, `debug_token`, `getWebhookInfo`; periodic, paged, locked).
//! - [`delivery`]: routing, unsend, dedupe, the CRM client, the encrypted retry buffer
//!   (Redis Streams) and its worker, the retry policy, per-tenant circuit breakers,
//!   the opt-in dead-letter list of given-up events.
//! - [`live`]: the reloadable part of the config, parsed once; [`tenant`] and
//!   [`signing`] (Standard Webhooks) are what it makes of `[[tenants]]`.
//! - [`channels`]: one adapter per channel; inbound normalization is pure.
//! - [`registry`]: the channel records behind the admin API and the CLI (put, list,
//!   delete, open), encrypting on the way in.
//! - [`vault`]: the Fernet keyring; re-encryption under the primary key
//!   (`vault rotate`).
//! - [`store`]: Redis (single or cluster) and memory backends; every key in [`store::keys`].
//! - [`config`]: settings, layered TOML + environment, `…_file` secrets, validation;
//!   [`telemetry`]: logs and metrics.
//! - [`event`]: the normalized event (the contract's envelope); [`channel`]: which
//!   channel (kind and id); [`time`]: clocks and timestamp formats.

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
pub mod redact;
pub mod registry;
pub mod reload;
pub mod replies;
pub mod signing;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenant;
pub mod time;
pub mod tokens;
pub mod vault;
