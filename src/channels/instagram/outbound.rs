//! Instagram messaging sends: the Messenger Send API shapes
//! ([`crate::channels::messenger::outbound::body_for`]) posted to
//! `POST /{version}/me/messages` with the channel's token as `Authorization: Bearer`.
//!
//! `me` is the token's owner: the Page linked to the Instagram account (Instagram
//! messaging through Facebook Login, on graph.facebook.com) or the Instagram account
//! itself (Instagram Login, on graph.instagram.com: `instagram.graph_base`, chosen by
//! the caller from the channel's `graph` field). The
//! channel id (the Instagram account id) is not in the path because, with a Page token,
//! Meta addresses the send to the Page. Private replies to comments use
//! `recipient.comment_id` on the same endpoint.

use crate::channels::messenger::outbound::{body_for, post};
use crate::channels::meta::graph::{GraphClient, GraphEndpoint, GraphPath};
use crate::channels::outbound::{Outbound, OutboundMessage, Receipt, SendError};
use crate::vault::AccessToken;

/// The path every Instagram send goes to (`me/messages`).
pub fn path() -> GraphPath {
    GraphPath::new(&["me", "messages"])
}

/// The Instagram sender for one request.
pub struct Instagram<'a> {
    pub graph: &'a GraphClient,
    pub endpoint: GraphEndpoint,
}

impl Outbound for Instagram<'_> {
    async fn send(&self, msg: &OutboundMessage, token: &AccessToken) -> Result<Receipt, SendError> {
        let body = body_for(msg, "Instagram")?;
        post(self.graph, &self.endpoint, &path(), body, token).await
    }
}
