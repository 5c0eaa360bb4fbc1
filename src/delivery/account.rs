//! WhatsApp account-level events (about a WABA as a whole): to which tenants, on which
//! channel. Each tenant that owns a channel whose record has the WABA id gets the event
//! once, on its numerically smallest such channel ([`crate::store::waba`]).

use std::collections::HashMap;
use std::sync::Arc;

use crate::channels::ChannelRef;
use crate::live::Live;
use crate::store::{Store, StoreBackend, StoreError};
use crate::tenant::Tenant;

/// The tenants an account-level event about `waba_id` goes to, each with its channel.
/// `seen` keeps the answers of one webhook, so each WABA is looked up once.
pub(super) async fn owners(
    store: &Store,
    live: &Live,
    waba_id: &str,
    seen: &mut HashMap<String, Vec<(Arc<Tenant>, ChannelRef)>>,
) -> Result<Vec<(Arc<Tenant>, ChannelRef)>, StoreError> {
    if let Some(found) = seen.get(waba_id) {
        return Ok(found.clone());
    }
    let channels = store.waba_channels(waba_id).await?;
    let mut found: Vec<(Arc<Tenant>, ChannelRef)> = Vec::new();
    // Smallest id first: the first channel of each tenant is the one it gets.
    for (channel, tenant_id) in channels {
        if found.iter().any(|(t, _)| t.id == tenant_id) {
            continue;
        }
        match live.tenants.get(&tenant_id) {
            Some(t) => found.push((t.clone(), channel)),
            None => tracing::error!(
                channel = %channel,
                tenant = %tenant_id,
                stage = "processing",
                "Channel names a tenant that is not configured."
            ),
        }
    }
    seen.insert(waba_id.to_owned(), found.clone());
    Ok(found)
}
