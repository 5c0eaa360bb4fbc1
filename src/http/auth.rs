//! The `Authorization: Bearer <credential>` header, read in one place: the tenant API
//! keys of `/v1/…` and the admin tokens of `/admin/v1/…`. What the credential is worth
//! is checked by the caller (constant time, in [`crate::live::Live`]).

use actix_web::http::header;
use actix_web::HttpRequest;

/// The credential of `Authorization: Bearer …` (scheme case-insensitive); `None` when
/// the header is missing, not text, of another scheme, or empty.
pub fn bearer(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.trim().split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then_some(credential)
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn only_a_non_empty_bearer_credential_is_read() {
        let with = |v: &str| {
            TestRequest::default()
                .insert_header((header::AUTHORIZATION, v))
                .to_http_request()
        };
        assert_eq!(bearer(&with("Bearer abc")), Some("abc"));
        assert_eq!(bearer(&with("bearer  abc ")), Some("abc"));
        assert_eq!(bearer(&with("Basic abc")), None);
        assert_eq!(bearer(&with("Bearer ")), None);
        assert_eq!(bearer(&with("Bearer")), None);
        assert_eq!(bearer(&TestRequest::default().to_http_request()), None);
    }
}
