//! Telegram Bot API: inbound updates and, for replies, the send API. The channel id is
//! the bot's numeric id (the part of its token before `:`).

pub mod client;
pub mod inbound;
pub mod outbound;
pub mod secret;
pub mod webhook;
mod wire;
