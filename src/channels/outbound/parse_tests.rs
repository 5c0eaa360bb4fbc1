//! What [`super::OutboundMessage::parse`] accepts and how it refuses the rest.

use super::*;

fn parse(v: Value) -> Result<OutboundMessage, ParseError> {
    OutboundMessage::parse(&serde_json::to_vec(&v).unwrap())
}

#[test]
fn text_parses_with_reply_to() {
    let m = parse(serde_json::json!({
        "channel": {"kind": "whatsapp", "id": "106540352242922"},
        "to": "15551234567",
        "message": {"kind": "text", "text": "Hello!", "reply_to": "wamid.X"}
    }))
    .unwrap();
    assert_eq!(m.to, Recipient::User("15551234567".into()));
    assert_eq!(m.reply_to.as_deref(), Some("wamid.X"));
    assert!(matches!(m.content, Content::Text { ref text, preview_url: None } if text == "Hello!"));
}

#[test]
fn errors_name_the_field() {
    let base = |message: Value| serde_json::json!({"channel": {"kind": "telegram", "id": "1"}, "to": "2", "message": message});
    let cases = [
        (base(serde_json::json!({"kind": "text"})), "message.text"),
        (base(serde_json::json!({"kind": "fax"})), "message.kind"),
        (
            base(serde_json::json!({"kind": "text", "text": 3})),
            "message.text",
        ),
        (
            base(serde_json::json!({"kind": "text", "txt": "a"})),
            "message.txt",
        ),
        (base(serde_json::json!({"kind": "image"})), "message.url"),
        (
            base(serde_json::json!({"kind": "image", "url": "ftp://x"})),
            "message.url",
        ),
        (
            base(
                serde_json::json!({"kind": "interactive", "text": "t", "buttons": [{"id": "a", "title": "A"}, {"id": "b"}]}),
            ),
            "message.buttons[1].title",
        ),
        (
            base(
                serde_json::json!({"kind": "interactive", "text": "t", "list": {"button": "b", "sections": [{"rows": [{"id": "x"}]}]}}),
            ),
            "message.list.sections[0].rows[0].title",
        ),
        (
            serde_json::json!({"channel": {"kind": "fax", "id": "1"}, "to": "2", "message": {"kind": "text", "text": "a"}}),
            "channel.kind",
        ),
        (
            serde_json::json!({"channel": {"kind": "telegram", "id": "1"}, "message": {"kind": "text", "text": "a"}}),
            "to",
        ),
        (
            serde_json::json!({"to": "2", "message": {"kind": "text", "text": "a"}}),
            "channel",
        ),
    ];
    for (body, field) in cases {
        let e = parse(body.clone()).unwrap_err();
        assert_eq!(e.field, field, "{body}: {e}");
    }
    assert_eq!(OutboundMessage::parse(b"{").unwrap_err().field, "body");
}

#[test]
fn raw_keeps_bytes_and_needs_no_to() {
    let body = br#"{"channel":{"kind":"whatsapp","id":"1"},"message":{"raw":{"z":1,"a":[2]}}}"#;
    let m = OutboundMessage::parse(body).unwrap();
    assert_eq!(m.to, Recipient::InBody);
    match m.content {
        Content::Raw { body, method } => {
            assert_eq!(body.get(), r#"{"z":1,"a":[2]}"#);
            assert!(method.is_none());
        }
        other => panic!("{other:?}"),
    }
    // Also at the top level, beside `channel` (Telegram names its method there).
    let body =
        br#"{"channel":{"kind":"telegram","id":"1"},"method":"sendDice","raw":{"chat_id":5}}"#;
    let m = OutboundMessage::parse(body).unwrap();
    match m.content {
        Content::Raw { body, method } => {
            assert_eq!(body.get(), r#"{"chat_id":5}"#);
            assert_eq!(method.as_deref(), Some("sendDice"));
        }
        other => panic!("{other:?}"),
    }
    let both = br#"{"channel":{"kind":"telegram","id":"1"},"raw":{},"message":{"kind":"text","text":"a"}}"#;
    assert_eq!(OutboundMessage::parse(both).unwrap_err().field, "raw");
}

/// What the reader answers, body by body: a message, or the field and sentence the
/// CRM is shown (the same answers the hand-written reader it replaced gave).
#[test]
fn every_refusal_names_the_field_and_says_why() {
    let cases: &[(&str, Option<(&str, &str)>)] = &[
        (r#"{}"#, Some(("channel", "is required"))),
        (r#"[]"#, Some(("body", "must be a JSON object"))),
        (r#""x""#, Some(("body", "must be a JSON object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"}}"#, Some(("message", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","text":"a"},"to":2}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","text":"a"},"to":2.5}"#, Some(("to", "must be a string or an integer"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","text":"a"},"to":""}"#, Some(("to", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"comment_id":"c","message":{"kind":"text","text":"a"},"to":"1"}"#, Some(("comment_id", "give either `to` or `comment_id`, not both"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"comment_id":"c","message":{"kind":"text","text":"a"}}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"comment_id":5,"message":{"kind":"text","text":"a"}}"#, Some(("comment_id", "must be a string"))),
        (r#"{"channel":"x","message":{"kind":"text","text":"a"},"to":"1"}"#, Some(("channel", "must be an object"))),
        (r#"{"channel":{"kind":"telegram"},"message":{"kind":"text","text":"a"},"to":"1"}"#, Some(("channel.id", "is required"))),
        (r#"{"channel":{"id":"a b","kind":"telegram"},"message":{"kind":"text","text":"a"},"to":"1"}"#, Some(("channel.id", "a Telegram channel id is the bot's numeric id (digits, optionally a leading '-')"))),
        (r#"{"channel":{"id":"..","kind":"whatsapp"},"message":{"kind":"text","text":"a"},"to":"1"}"#, Some(("channel.id", "a WhatsApp, Messenger or Instagram channel id is a Graph id (1 to 32 digits)"))),
        (r#"{"channel":{"id":"-100123","kind":"telegram"},"message":{"kind":"text","text":"a"},"to":"1"}"#, None),
        (r#"{"channel":{"id":7,"kind":"telegram","x":1},"message":{"kind":"text","text":"a"},"to":"1"}"#, Some(("channel.x", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":3},"message":{"kind":"text","text":"a"},"to":"1"}"#, Some(("channel.kind", "must be a string"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":null,"to":"1"}"#, Some(("message", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":"hi","to":"1"}"#, Some(("message", "must be an object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","text":"a"},"method":"sendDice","to":"1"}"#, Some(("method", "only with a top-level `raw`"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"method":"sendDice","raw":{"a":1}}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"method":"send-dice","raw":{"a":1}}"#, Some(("method", "must be a Bot API method name"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"method":3,"raw":{"a":1}}"#, Some(("method", "must be a string"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"method":"sendDice","raw":[1]}"#, Some(("raw", "must be an object"))),
        (r#"{"business_connection_id":"bc1","channel":{"id":"1","kind":"telegram"},"raw":{"a":1}}"#, None),
        (r#"{"business_connection_id":"","channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","text":"a"},"to":"1"}"#, Some(("business_connection_id", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{},"to":"2"}"#, Some(("message.kind", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":3},"to":"2"}"#, Some(("message.kind", "must be a string"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":""},"to":"2"}"#, Some(("message.kind", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"fax"},"to":"2"}"#, Some(("message.kind", "unknown kind `fax` (text, image, audio, video, document, sticker, location, contacts, template, interactive, reaction, read, typing, callback_answer, media_group, raw)"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"raw":{"x":1}},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"raw","method":"sendDice","raw":{"x":1}},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"raw","raw":{"x":1},"reply_to":"1"},"to":"2"}"#, Some(("message.reply_to", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"raw","raw":5},"to":"2"}"#, Some(("message.raw", "must be an object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","messaging_type":"UPDATE","reply_to":5,"tag":"T","text":"a"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","reply_to":5.5,"text":"a"},"to":"2"}"#, Some(("message.reply_to", "must be a string or an integer"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","messaging_type":"NOPE","text":"a"},"to":"2"}"#, Some(("message.messaging_type", "must be RESPONSE, UPDATE or MESSAGE_TAG"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","tag":"","text":"a"},"to":"2"}"#, Some(("message.tag", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","text":""},"to":"2"}"#, Some(("message.text", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","text":null},"to":"2"}"#, Some(("message.text", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","preview_url":"yes","text":"a"},"to":"2"}"#, Some(("message.preview_url", "must be true or false"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","preview_url":false,"text":"a"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"text","text":[1]},"to":"2"}"#, Some(("message.text", "must be a string"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"caption":"c","kind":"image","url":"https://x.example/a.png"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"image","url":"not a url"},"to":"2"}"#, Some(("message.url", "not a URL (relative URL without a base)"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"filename":"f","kind":"image","media_id":"m"},"to":"2"}"#, Some(("message.filename", "only a document has a filename"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"filename":"f","kind":"document","media_id":"m"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"audio","media_id":"m","voice":true},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"audio","media_id":"m","voice":1},"to":"2"}"#, Some(("message.voice", "must be true or false"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"video","media_id":"m","voice":true},"to":"2"}"#, Some(("message.voice", "only audio can be a voice note"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"sticker","media_id":""},"to":"2"}"#, Some(("message.media_id", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"address":"a","kind":"location","latitude":1,"longitude":-2.5,"name":"n"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"location","latitude":90.5,"longitude":0},"to":"2"}"#, Some(("message.latitude", "must be between -90 and 90"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"location","latitude":0,"longitude":-180.5},"to":"2"}"#, Some(("message.longitude", "must be between -180 and 180"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"location","latitude":true,"longitude":0},"to":"2"}"#, Some(("message.latitude", "must be a number"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"location","longitude":0},"to":"2"}"#, Some(("message.latitude", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"location","latitude":0,"longitude":0,"zoom":3},"to":"2"}"#, Some(("message.zoom", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"contacts"},"to":"2"}"#, Some(("message.contacts", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"contacts":{},"kind":"contacts"},"to":"2"}"#, Some(("message.contacts", "must be an array"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"contacts":[1],"kind":"contacts"},"to":"2"}"#, Some(("message.contacts[0]", "must be an object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"contacts":[{"name":"x"}],"kind":"contacts"},"to":"2"}"#, Some(("message.contacts[0].name", "must be an object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"contacts":[{"name":{"first_name":"A"},"phones":[]}],"kind":"contacts"},"to":"2"}"#, Some(("message.contacts[0].phones", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"contacts":[{"name":{"first_name":"A"},"org":{"company":"C"},"phones":[{"phone":"+1"}]}],"kind":"contacts"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"template","language":"en","name":"n"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"components":[],"kind":"template","language":"en","name":"n"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"components":[{"type":"body"},3],"kind":"template","language":"en","name":"n"},"to":"2"}"#, Some(("message.components[1]", "must be an object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"components":{},"kind":"template","language":"en","name":"n"},"to":"2"}"#, Some(("message.components", "must be an array"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"template","language":"en"},"to":"2"}"#, Some(("message.name", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.buttons", "give exactly one of `buttons`, `list`, `quick_replies` or `flow`"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[],"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.buttons", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":"b","kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.buttons", "must be an array"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A"}],"kind":"interactive","quick_replies":[{"id":"a","title":"A"}],"text":"t"},"to":"2"}"#, Some(("message.buttons", "give exactly one of `buttons`, `list`, `quick_replies` or `flow`"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A"},{"title":"X","url":"https://x.example"}],"footer":"f","header":"h","kind":"interactive","text":"t"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A","url":"https://x"}],"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.buttons[0].url", "give `id` or `url`"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"title":"A"}],"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.buttons[0].id", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"color":"red","id":"a","title":"A"}],"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.buttons[0].color", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":["a"],"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.buttons[0]", "must be an object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","quick_replies":[{"id":"a","title":"A","url":"https://x"}],"text":"t"},"to":"2"}"#, Some(("message.quick_replies[0].url", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","quick_replies":[{"id":"a","title":"A"}],"text":"t"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A"}],"kind":"interactive"},"to":"2"}"#, Some(("message.text", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","list":{"button":"b","sections":[{"rows":[{"description":"d","id":"1","title":"x"}],"title":"s"}]},"text":"t"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","list":{"sections":[{"rows":[{"id":"1","title":"x"}]}]},"text":"t"},"to":"2"}"#, Some(("message.list.button", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","list":{"button":"b"},"text":"t"},"to":"2"}"#, Some(("message.list.sections", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","list":{"button":"b","sections":[{"rows":[]}]},"text":"t"},"to":"2"}"#, Some(("message.list.sections[0].rows", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","list":{"button":"b","sections":[{"rows":[{"id":"1","more":1,"title":"x"}]}]},"text":"t"},"to":"2"}"#, Some(("message.list.sections[0].rows[0].more", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","list":{"button":"b","sections":[{"extra":1,"rows":[{"id":"1","title":"x"}]}]},"text":"t"},"to":"2"}"#, Some(("message.list.sections[0].extra", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","list":{"button":"b","sections":[{"rows":[{"id":"1","title":"x"}]}],"size":2},"text":"t"},"to":"2"}"#, Some(("message.list.size", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"interactive","list":5,"text":"t"},"to":"2"}"#, Some(("message.list", "must be an object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"emoji":"","kind":"reaction","message_id":12},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"reaction","message_id":"m"},"to":"2"}"#, Some(("message.emoji", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"emoji":1,"kind":"reaction","message_id":"m"},"to":"2"}"#, Some(("message.emoji", "must be a string"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"emoji":"x","kind":"reaction","message_id":"m","on":true},"to":"2"}"#, Some(("message.on", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"read","message_id":"m"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"read"},"to":"2"}"#, Some(("message.message_id", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"emoji":"x","kind":"read","message_id":"m"},"to":"2"}"#, Some(("message.emoji", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"typing"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"typing","message_id":9,"on":false},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"typing","on":"no"},"to":"2"}"#, Some(("message.on", "must be true or false"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A"}],"header":3,"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.header", "must be a string or an object"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A"}],"header":{"kind":"audio","media_id":"m"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.header.kind", "must be image, video or document"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A"}],"header":{"kind":"image"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.header.url", "`url` or `media_id` is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A"}],"header":{"kind":"image","media_id":"m","filename":"f"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.header.filename", "only a document has a filename"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"buttons":[{"id":"a","title":"A"}],"header":{"kind":"video","url":"https://x.example/v.mp4","size":1},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.header.size", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"callback_answer"},"to":"2"}"#, Some(("message.callback_query_id", "is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"callback_answer","callback_query_id":"q","show_alert":"yes"},"to":"2"}"#, Some(("message.show_alert", "must be true or false"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"callback_answer","callback_query_id":"q","text":"ok"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"items":[{"kind":"image","media_id":"a"}],"kind":"media_group"},"to":"2"}"#, Some(("message.items", "a media group has 2 to 10 items"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"items":[{"kind":"image","media_id":"a"},{"kind":"sticker","media_id":"b"}],"kind":"media_group"},"to":"2"}"#, Some(("message.items[1].kind", "must be image, video, document or audio"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"items":[{"kind":"image","media_id":"a"},{"kind":"image"}],"kind":"media_group"},"to":"2"}"#, Some(("message.items[1].url", "`url` or `media_id` is required"))),
        (r#"{"channel":{"id":"1","kind":"telegram"},"message":{"kind":"media_group"},"to":"2"}"#, Some(("message.items", "is required"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"cta":"Book","id":"123","screen":"START"},"kind":"interactive","text":"t"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"action":"data_exchange","cta":"Book","mode":"draft","name":"booking","token":"tk"},"kind":"interactive","text":"t"},"to":"2"}"#, None),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"buttons":[{"id":"a","title":"A"}],"flow":{"cta":"Book","id":"123","screen":"S"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.buttons", "give exactly one of `buttons`, `list`, `quick_replies` or `flow`"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"cta":"Book","screen":"S"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.id", "give exactly one of `id` or `name`"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"cta":"Book","id":"1","name":"n","screen":"S"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.id", "give exactly one of `id` or `name`"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"id":"1","screen":"S"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.cta", "is required"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"cta":"Book","id":"1"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.screen", "is required"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"cta":"Book","data":{},"id":"1","screen":"S"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.data", "must not be empty"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"action":"data_exchange","cta":"Book","id":"1","screen":"S"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.screen", "a data_exchange Flow asks its endpoint for the first screen"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"action":"jump","cta":"Book","id":"1"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.action", "must be navigate or data_exchange"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"cta":"Book","id":"1","mode":"live","screen":"S"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.mode", "must be published or draft"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":{"cta":"Book","id":"1","screen":"S","version":"3"},"kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow.version", "is not a known field here"))),
        (r#"{"channel":{"id":"1","kind":"whatsapp"},"message":{"flow":"f","kind":"interactive","text":"t"},"to":"2"}"#, Some(("message.flow", "must be an object"))),
    ];
    for (body, expected) in cases {
        let got = OutboundMessage::parse(body.as_bytes());
        match (expected, &got) {
            (None, Ok(_)) => {}
            (Some((field, detail)), Err(e)) => {
                assert_eq!(
                    (e.field.as_str(), e.detail.as_str()),
                    (*field, *detail),
                    "{body}"
                )
            }
            _ => panic!("{body}: {got:?}"),
        }
    }
    for raw in [&b"{"[..], b"", b"[1,"] {
        let e = OutboundMessage::parse(raw).unwrap_err();
        assert_eq!(e.field, "body");
        assert!(e.detail.starts_with("not valid JSON"), "{e}");
    }
}
