//! Integration tests: the real application, a real redis-server, real HTTP peers.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod helpers;
mod inbound_whatsapp;
mod webhook_input;
