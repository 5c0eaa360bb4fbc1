//! Integration tests: the real application, a real redis-server, real HTTP peers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod buffer_limit;
mod channel_fields;
mod cluster;
mod connect_browser;
mod connect_flows;
mod connect_links;
mod dead_letters;
mod delivery_buffer;
mod delivery_load;
mod delivery_replicas;
mod devtools;
mod event_schema;
mod hardening;
mod helpers;
mod hot_path;
mod inbound_instagram;
mod inbound_messenger;
mod inbound_telegram;
mod inbound_whatsapp;
mod instagram_login;
mod media;
mod privacy;
mod reload;
mod replies_errors;
mod replies_idempotency;
mod replies_meta;
mod replies_support;
mod replies_telegram;
mod replies_whatsapp;
mod routing_cache;
mod server_limits;
mod token_health;
mod vault_admin;
mod vault_interop;
mod webhook_input;
