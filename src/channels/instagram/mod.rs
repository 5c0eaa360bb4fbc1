//! Instagram: inbound webhooks ([`inbound`]) and, for replies, the send API.

pub mod inbound;
pub mod outbound;
