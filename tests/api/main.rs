//! Integration tests: the real application, a real redis-server, real HTTP peers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod cluster;
mod delivery_buffer;
mod delivery_support;
mod event_schema;
mod helpers;
mod inbound_whatsapp;
mod privacy;
mod vault_admin;
mod vault_interop;
mod webhook_input;
