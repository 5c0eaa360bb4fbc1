//! What every request handler and background task shares, built once by
//! [`crate::app::Application::build`]: the live configuration, the store, the
//! dispatcher, and the pooled clients of the providers. Handlers take the parts they
//! need and pass them on; the domain modules never see this struct.

use std::sync::Arc;

use arc_swap::ArcSwap;
use metrics_exporter_prometheus::PrometheusHandle;

use crate::delivery::Dispatcher;
use crate::live::Live;
use crate::privacy::revoke::Revoker;
use crate::replies::Providers;
use crate::store::Store;

/// The relay's shared state.
pub struct AppState {
    /// The live configuration; swapped whole on reload.
    pub live: Arc<ArcSwap<Live>>,
    pub store: Store,
    pub dispatcher: Dispatcher,
    pub metrics: PrometheusHandle,
    /// The pooled Graph API and Bot API clients (replies, media).
    pub providers: Providers,
    /// Revokes the app's access at the provider (`DELETE …?revoke=true`).
    pub revoker: Revoker,
    /// The connect pages' OAuth and Graph calls.
    pub connect: crate::connect::provider::OAuthClient,
}

impl AppState {
    /// The token health check over this state's store, dispatcher and clients.
    pub fn token_health(&self) -> crate::tokens::TokenHealth {
        crate::tokens::TokenHealth {
            store: self.store.clone(),
            dispatcher: self.dispatcher.clone(),
            clients: crate::tokens::Clients {
                oauth: self.connect.clone(),
                telegram: self.providers.telegram.clone(),
            },
        }
    }
}
