//! Channels stored as an operator stores them (secrets Fernet-encrypted), before a test
//! starts or during it.

use std::time::{Duration, Instant};

use secrecy::SecretString;
use switchboard::channels::{ChannelKind, ChannelRef};
use switchboard::store::{ChannelRecord, Store, StoreBackend};
use switchboard::vault::Keyring;

use super::app::TestApp;

/// A channel as an operator stores it.
pub struct NewChannel<'a> {
    pub tenant: &'a str,
    pub token: &'a str,
    pub webhook_secret: Option<&'a str>,
    /// The Meta user who connected it.
    pub user_id: Option<&'a str>,
    /// WhatsApp: its WhatsApp Business Account.
    pub waba_id: Option<&'a str>,
}

impl<'a> NewChannel<'a> {
    pub fn new(tenant: &'a str, token: &'a str) -> Self {
        Self {
            tenant,
            token,
            webhook_secret: None,
            user_id: None,
            waba_id: None,
        }
    }
}

/// Stores a channel with its secrets Fernet-encrypted, retrying while the store is
/// unreachable (deadline 10 s).
pub async fn put_channel_into(
    store: &Store,
    keyring: &Keyring,
    kind: ChannelKind,
    id: &str,
    new: &NewChannel<'_>,
) {
    let encrypt = |s: &str| SecretString::from(keyring.encrypt(s.as_bytes()));
    let record = ChannelRecord {
        tenant: new.tenant.to_owned(),
        token: encrypt(new.token),
        webhook_secret: new.webhook_secret.map(encrypt),
        updated_at: None,
        user_id: new.user_id.map(str::to_owned),
        waba_id: new.waba_id.map(str::to_owned),
        ..Default::default()
    };
    let channel = ChannelRef::parse(kind, id).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = store.put_channel(&channel, &record).await {
        assert!(Instant::now() < deadline, "store unreachable: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl TestApp {
    /// Stores a channel with its token Fernet-encrypted (as an operator would).
    pub async fn put_channel(&self, kind: ChannelKind, id: &str, tenant: &str, token: &str) {
        self.put(kind, id, &NewChannel::new(tenant, token)).await;
    }

    pub async fn put_channel_with_secret(
        &self,
        kind: ChannelKind,
        id: &str,
        tenant: &str,
        token: &str,
        webhook_secret: Option<&str>,
    ) {
        let new = NewChannel {
            webhook_secret,
            ..NewChannel::new(tenant, token)
        };
        self.put(kind, id, &new).await;
    }

    /// Stores a channel described in full.
    pub async fn put(&self, kind: ChannelKind, id: &str, new: &NewChannel<'_>) {
        put_channel_into(&self.state.store, &self.keyring, kind, id, new).await;
    }
}
