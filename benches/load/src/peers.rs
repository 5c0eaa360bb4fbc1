//! The baseline forwarder and the fallback sink, each one actix-web worker.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use bytes::Bytes;

/// WhatsApp's answer to a send (what the relay's WhatsApp channel reads back).
pub const GRAPH_SEND_ANSWER: &str = r#"{"messaging_product":"whatsapp","contacts":[{"input":"16505550000","wa_id":"16505550000"}],"messages":[{"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJCOTY3NDc0NDFDRUI3NTA0Q0UA"}]}"#;

struct Upstream {
    url: String,
    client: reqwest::Client,
}

/// Receives a request, POSTs its body to `upstream` over a pooled keep-alive client,
/// answers 200 once upstream answered 2xx (else 502): the two hops and nothing else.
pub fn forwarder(bind: &str, upstream: &str) -> anyhow::Result<()> {
    let url = upstream.to_owned();
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            // One client per worker, made on the worker's runtime.
            let up = Upstream {
                url: url.clone(),
                client: reqwest::Client::new(),
            };
            App::new()
                .app_data(web::Data::new(up))
                .default_service(web::to(forward))
        })
        .workers(1)
        .bind(bind)?
        .run()
        .await
    })?;
    Ok(())
}

async fn forward(body: Bytes, up: web::Data<Upstream>) -> HttpResponse {
    match up.client.post(&up.url).body(body).send().await {
        Ok(r) if r.status().is_success() => HttpResponse::Ok().finish(),
        _ => HttpResponse::BadGateway().finish(),
    }
}

/// 204 to every request, WhatsApp's send answer to a path ending in `/messages`.
pub fn sink(bind: &str) -> anyhow::Result<()> {
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| App::new().default_service(web::to(answer)))
            .workers(1)
            .bind(bind)?
            .run()
            .await
    })?;
    Ok(())
}

async fn answer(req: HttpRequest, _body: Bytes) -> HttpResponse {
    if req.path().ends_with("/messages") {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(GRAPH_SEND_ANSWER)
    } else {
        HttpResponse::NoContent().finish()
    }
}
