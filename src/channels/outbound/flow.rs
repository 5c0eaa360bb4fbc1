//! `message.flow` of an interactive message: a WhatsApp Flow to open, read from the
//! request body with each refusal naming its field (as in [`super::parse`]).
//!
//! `{"id" | "name", "cta", "token"?, "action"?: "navigate" | "data_exchange",
//! "screen"?, "data"?, "mode"?: "published" | "draft"}`: exactly one of `id` and `name`;
//! a `navigate` Flow (the default) needs its first `screen`, and `data` for it must not be
//! empty; a `data_exchange` Flow takes neither.

use super::message::{Flow, FlowAction, FlowRef};
use super::parse::{err, known_only, required, ParseError};
use super::wire::FlowWire;

const AT: &str = "message.flow";

pub(super) fn parse(w: FlowWire) -> Result<Flow, ParseError> {
    known_only(&w.unknown, AT, &[])?;
    let flow = match (w.id, w.name) {
        (Some(id), None) => FlowRef::Id(id.0),
        (None, Some(name)) => FlowRef::Name(name.0),
        _ => return Err(err("message.flow.id", "give exactly one of `id` or `name`")),
    };
    let cta = required(w.cta, AT, "cta")?.0;
    let action = match w.action.as_ref().map(|a| a.0.as_str()) {
        None | Some("navigate") => {
            let data = w.data.map(|d| d.0);
            if data.as_ref().is_some_and(|d| d.is_empty()) {
                return Err(err("message.flow.data", "must not be empty"));
            }
            FlowAction::Navigate {
                screen: required(w.screen, AT, "screen")?.0,
                data,
            }
        }
        Some("data_exchange") => {
            if w.screen.is_some() {
                return Err(err(
                    "message.flow.screen",
                    "a data_exchange Flow asks its endpoint for the first screen",
                ));
            }
            if w.data.is_some() {
                return Err(err(
                    "message.flow.data",
                    "a data_exchange Flow gets its data from its endpoint",
                ));
            }
            FlowAction::DataExchange
        }
        Some(_) => {
            return Err(err(
                "message.flow.action",
                "must be navigate or data_exchange",
            ))
        }
    };
    let mode = match w.mode.map(|m| m.0) {
        Some(m) if m != "published" && m != "draft" => {
            return Err(err("message.flow.mode", "must be published or draft"))
        }
        m => m,
    };
    Ok(Flow {
        flow,
        cta,
        token: w.token.map(|t| t.0),
        action,
        mode,
    })
}
