//! Outbound (replies): the neutral [`OutboundMessage`] a CRM posts to `POST /v1/messages`
//! ([`message`]), how its body is read ([`parse`]: serde, every error naming the field at
//! fault, `message.buttons[1].title`), the one trait every channel implements
//! ([`Outbound`]), and what a send answers ([`result`]: a [`Receipt`] or a [`SendError`]
//! already classified the contract's way).
//!
//! What a channel cannot do is not decided here: each channel's `outbound` module refuses
//! it with [`SendError::Unsupported`], naming the field.

mod fields;
mod flow;
pub mod message;
pub mod parse;
pub mod result;
mod wire;

use std::future::Future;

use crate::vault::AccessToken;

pub use message::{
    Button, Choices, Content, Flow, FlowAction, FlowRef, GroupItem, Header, ListRow, ListSection,
    MediaKind, MediaSource, OutboundMessage, Recipient,
};
pub use parse::ParseError;
pub use result::{transport_error, ProviderDetail, Receipt, SendError};

/// Sending through one channel.
pub trait Outbound: Send + Sync {
    fn send(
        &self,
        message: &OutboundMessage,
        token: &AccessToken,
    ) -> impl Future<Output = Result<Receipt, SendError>> + Send;
}
