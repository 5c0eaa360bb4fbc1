//! WhatsApp Cloud API: inbound webhooks ([`inbound`], account-level ones in
//! [`account`], message content in [`content`], the webhook objects in [`wire`]) and,
//! for replies, the send API ([`outbound`]). The channel id is the `phone_number_id`.

pub mod account;
mod content;
pub mod inbound;
pub mod outbound;
pub(crate) mod wire;

use crate::channels::ChannelKind;

const KIND: ChannelKind = ChannelKind::Whatsapp;
