//! The request-body deadline (`server.body_timeout_ms`): a body not received in full
//! within that time of its request's head is answered 408, and nothing is processed.
//!
//! A middleware wraps every request's payload in a stream that fails once the deadline
//! passes, so whatever reads the body (our `read_limited`, or an extractor) stops with an
//! error before it has a complete body, and the answer is replaced by a 408 problem. A
//! client sending a byte every few seconds therefore holds a connection at most this long
//! (after `server.header_timeout_ms` for the head).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::PayloadError;
use actix_web::{Error, HttpMessage, ResponseError};
use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::problem::ApiError;
use crate::state::AppState;

/// The middleware (`App::wrap(BodyDeadline)`): wraps each payload, and answers 408 when
/// its deadline fired. The inner service is called at once, inside `call` (the router
/// needs the only reference to the request, so this must not be deferred to a future).
pub struct BodyDeadline;

impl<S, B> Transform<S, ServiceRequest> for BodyDeadline
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Transform = BodyDeadlineService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(BodyDeadlineService { service }))
    }
}

pub struct BodyDeadlineService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for BodyDeadlineService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<BoxBody>;
    type Error = Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, mut req: ServiceRequest) -> Self::Future {
        let limit = req
            .app_data::<actix_web::web::Data<AppState>>()
            .map(|s| Duration::from_millis(s.live.load().settings.server.body_timeout_ms));
        let expired = Arc::new(AtomicBool::new(false));
        if let Some(limit) = limit {
            let inner = req.take_payload();
            if matches!(inner, Payload::None) {
                req.set_payload(inner);
            } else {
                req.set_payload(Payload::Stream {
                    payload: Box::pin(DeadlineStream {
                        inner,
                        sleep: Box::pin(tokio::time::sleep_until(Instant::now() + limit)),
                        expired: expired.clone(),
                        finished: false,
                    }),
                });
            }
        }
        let fut = self.service.call(req);
        Box::pin(async move {
            let res = fut.await;
            if !expired.load(Ordering::Acquire) {
                return res.map(ServiceResponse::map_into_boxed_body);
            }
            tracing::info!(
                stage = "receiving",
                "Request body not received within server.body_timeout_ms; answered 408."
            );
            let timeout = ApiError::request_timeout();
            match res {
                Ok(resp) => Ok(resp.into_response(timeout.error_response())),
                Err(_) => Err(timeout.into()),
            }
        })
    }
}

/// A payload that fails with `TimedOut` once its deadline passes before its end.
struct DeadlineStream {
    inner: Payload,
    sleep: Pin<Box<Sleep>>,
    expired: Arc<AtomicBool>,
    /// The body ended (or failed) before the deadline: the timer no longer matters.
    finished: bool,
}

impl Stream for DeadlineStream {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.expired.load(Ordering::Relaxed) {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.finished = true;
                Poll::Ready(None)
            }
            Poll::Ready(Some(item)) => {
                if item.is_err() {
                    this.finished = true;
                }
                Poll::Ready(Some(item))
            }
            Poll::Pending if this.finished => Poll::Pending,
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.expired.store(true, Ordering::Release);
                    Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "request body deadline passed",
                    )))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
}
