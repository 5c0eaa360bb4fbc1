//! A tenant: one downstream CRM as the live configuration describes it, the parsed form
//! of a `[[tenants]]` entry (built by [`crate::live::Live::new`], used by delivery and
//! replies).

use secrecy::SecretString;

use crate::signing::Signer;

/// One downstream CRM.
#[derive(Debug)]
pub struct Tenant {
    pub id: String,
    pub crm_url: url::Url,
    /// Its signing secrets, keyed (the primary first).
    pub signer: Signer,
    /// Its API keys for `/v1/…` (matched by digest in [`crate::live::Live`]).
    pub api_keys: Vec<SecretString>,
    /// Whether events carry the provider's raw payload.
    pub include_raw: bool,
}
