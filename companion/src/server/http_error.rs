//! Errors as HTTP answers: the crate's [`Error`] mapped to a status code, as a
//! JSON body under /api/ and as a small HTML page elsewhere.

use crate::error::Error;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;

/// The status code an error deserves.
pub fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::BadHash(_) | Error::BadDomain(_) | Error::BadTarget(_) => StatusCode::BAD_REQUEST,
        Error::NotFound(_) => StatusCode::NOT_FOUND,
        Error::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        Error::Locked(_) | Error::Refused(_) | Error::Rollback { .. } => StatusCode::CONFLICT,
        Error::NotMigrated(_) => StatusCode::SERVICE_UNAVAILABLE,
        Error::PeerTube(_) | Error::Http(_) => StatusCode::BAD_GATEWAY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn log(e: &Error, code: StatusCode) {
    if code.is_server_error() {
        tracing::error!(error = %e, "request failed");
    } else {
        tracing::info!(error = %e, status = code.as_u16(), "request refused");
    }
}

/// An error answered as `{"error": "..."}`.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = status_of(&self.0);
        log(&self.0, code);
        (code, Json(serde_json::json!({ "error": self.0.to_string(), "status": code.as_u16() }))).into_response()
    }
}

/// An error answered as an HTML page.
#[derive(Debug)]
pub struct PageError(pub Error);

impl From<Error> for PageError {
    fn from(e: Error) -> Self {
        PageError(e)
    }
}

pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let code = status_of(&self.0);
        log(&self.0, code);
        let body = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code}</title></head><body>\
             <h1>{code}</h1><p class=\"error\" role=\"alert\">{}</p><p><a href=\"/peertube/review\">Back to the review queue</a></p></body></html>",
            escape_html(&self.0.to_string())
        );
        (code, Html(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(status_of(&Error::BadHash("x".into())), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(&Error::BadDomain("x".into())), StatusCode::BAD_REQUEST);
        assert_eq!(status_of(&Error::NotFound("x".into())), StatusCode::NOT_FOUND);
        assert_eq!(status_of(&Error::Locked("x".into())), StatusCode::CONFLICT);
        assert_eq!(status_of(&Error::Other("x".into())), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(escape_html("<a href='x'>&"), "&lt;a href=&#39;x&#39;&gt;&amp;");
    }
}
