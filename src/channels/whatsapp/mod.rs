//! WhatsApp Cloud API: inbound webhooks ([`inbound`]) and, for replies, the send API.
//! The channel id is the `phone_number_id`.

pub mod inbound;
pub mod outbound;
