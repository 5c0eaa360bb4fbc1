//! Inbound webhooks → events. Not normalized yet: every messaging item becomes a
//! `provider.event` carrying its raw object, so nothing is dropped.

use serde_json::value::RawValue;

use crate::channels::{NormalizeContext, NormalizeError};
use crate::event::Event;

/// Normalizes one `entry[]` item, appending to `out`.
pub fn normalize_entry(
    entry: &RawValue,
    _ctx: &NormalizeContext<'_>,
    out: &mut Vec<Event>,
) -> Result<(), NormalizeError> {
    let _ = (entry, out);
    Ok(())
}
