//! Connecting channels (v2): the relay hosts the pages on which a business connects its
//! own WhatsApp number, Facebook Page, Instagram account or Telegram bot, so a CRM
//! only asks for a link and waits for `channel.connected`.
//!
//! - [`settings`]: `[instagram]`, `[connect]`, `[tokens]`.
//! - [`links`]: connect links (hashed secrets with a TTL, single use, revocable).
//! - [`flow`]: one pass through a page: the flow cookie and its server-side record, the
//!   OAuth `state` bound to both.
//! - [`pages`]: the HTML (maud templates).
//! - [`finish`]: storing the channel (never another tenant's), using the link up,
//!   `channel.connected`.
//! - [`provider`]: the HTTP calls of the flows (tokens never in an error or a log).
//! - [`telegram`], [`messenger`], [`instagram`], [`whatsapp`]: each kind's flow.

pub mod finish;
pub mod flow;
pub mod instagram;
pub mod links;
pub mod messenger;
pub mod pages;
pub mod provider;
pub mod telegram;
pub mod web;
pub mod whatsapp;
