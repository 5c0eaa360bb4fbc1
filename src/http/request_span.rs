//! The root span of every request (`App::wrap(RequestSpan)`): method, route pattern
//! (never the path or query: they may hold a verify token or a media id), a request id,
//! and the status once answered. Every log line of the request carries it.
//!
//! Below `info` (the level production may run at) the middleware is a plain pass-through:
//! no span, no request id, no wrapping future, nothing per request.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::Error;
use futures_util::future::Either;
use tracing::Span;

/// The middleware.
pub struct RequestSpan;

impl<S, B> Transform<S, ServiceRequest> for RequestSpan
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Transform = RequestSpanService<S>;
    type InitError = ();
    type Future = std::future::Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        std::future::ready(Ok(RequestSpanService { service }))
    }
}

pub struct RequestSpanService<S> {
    service: S,
}

impl<S, B> Service<ServiceRequest> for RequestSpanService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    type Response = ServiceResponse<B>;
    type Error = Error;
    type Future = Either<S::Future, Spanned<S::Future>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return Either::Left(self.service.call(req));
        }
        let route = req
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_owned());
        let request_id = format!("{:016x}", rand::random::<u64>());
        let span = tracing::info_span!(
            "request",
            method = %req.method(),
            route = %route,
            request_id = %request_id,
            status = tracing::field::Empty,
        );
        let inner = span.in_scope(|| self.service.call(req));
        Either::Right(Spanned { inner, span })
    }
}

pin_project_lite::pin_project! {
    /// The inner service's future, polled inside the request's span, which records the
    /// status it answered with.
    pub struct Spanned<F> {
        #[pin]
        inner: F,
        span: Span,
    }
}

impl<F, B> Future for Spanned<F>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let out = std::task::ready!(this.inner.poll(cx));
        let status = match &out {
            Ok(resp) => resp.response().status(),
            Err(e) => e.as_response_error().status_code(),
        };
        this.span.record("status", status.as_u16());
        Poll::Ready(out)
    }
}
