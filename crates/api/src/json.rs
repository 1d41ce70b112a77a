//! `ValidJson<T>`: the JSON body extractor of every handler.
//!
//! Unlike actix's `web::Json`, it names the exact field that failed (`scopes[1]`, `role`) by deserializing through
//! `serde_path_to_error`, and it answers every failure with the same problem documents: 415 for another content
//! type, 413 past the configured size limit (checked while reading, so a lying Content-Length cannot get past it),
//! 400 for bytes that are not JSON, 422 for JSON of the wrong shape.

use crate::error::{ApiError, ErrorCode, FieldError};
use crate::startup::AppState;
use actix_web::dev::Payload;
use actix_web::web::BytesMut;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures::StreamExt;
use futures::future::LocalBoxFuture;
use serde::de::DeserializeOwned;

pub struct ValidJson<T>(pub T);

impl<T> ValidJson<T> {
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for ValidJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

fn is_json(req: &HttpRequest) -> bool {
    match req.mime_type() {
        Ok(Some(m)) => m.subtype() == mime::JSON || m.suffix() == Some(mime::JSON),
        _ => false,
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for ValidJson<T> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map(|s| s.settings.max_body_bytes)
            .unwrap_or(256 * 1024);
        let json = is_json(req);
        let declared = declared_length(req);
        let mut payload = payload.take();
        Box::pin(async move {
            if !json {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    "send the body as Content-Type: application/json",
                )
                .into());
            }
            let too_large = || {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body exceeds the limit of {limit} bytes"),
                )
            };
            if declared.is_some_and(|n| n > limit) {
                return Err(too_large().into());
            }
            let mut body = BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| {
                    ApiError::new(
                        ErrorCode::MalformedBody,
                        format!("the body could not be read: {e}"),
                    )
                })?;
                if body.len() + chunk.len() > limit {
                    return Err(too_large().into());
                }
                body.extend_from_slice(&chunk);
            }
            parse(&body).map(ValidJson).map_err(Into::into)
        })
    }
}

/// Reads a request body, refusing it with 413 as soon as it passes `limit` bytes (a declared Content-Length
/// larger than the limit is refused before reading).
pub async fn read_body(
    payload: &mut Payload,
    declared: Option<usize>,
    limit: usize,
) -> Result<BytesMut, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("the body exceeds the limit of {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                ErrorCode::MalformedBody,
                format!("the body could not be read: {e}"),
            )
        })?;
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

pub fn declared_length(req: &HttpRequest) -> Option<usize> {
    req.headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

pub fn is_json_request(req: &HttpRequest) -> bool {
    is_json(req)
}

/// serde reports missing and unknown fields at the enclosing object; the message names the field itself.
fn named_field(message: &str) -> Option<&str> {
    let rest = message
        .strip_prefix("missing field `")
        .or_else(|| message.strip_prefix("unknown field `"))?;
    rest.split('`').next()
}

/// Deserializes a body, naming the failing field.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        // serde_json calls some shape errors syntax errors (a number where an enum is expected is "expected
        // value"): well-formed JSON of the wrong shape is the caller's data error, whatever serde calls it.
        if inner.is_data() || serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok() {
            let message = inner.to_string();
            let field = if path == "." {
                named_field(&message).unwrap_or("body").to_string()
            } else {
                path
            };
            ApiError {
                code: ErrorCode::ValidationFailed,
                detail: format!("{field}: {message}"),
                errors: vec![FieldError { field, message }],
            }
        } else {
            ApiError::new(
                ErrorCode::MalformedBody,
                format!("the body is not valid JSON: {inner}"),
            )
        }
    })?;
    // Trailing bytes after the value are a malformed body too.
    de.end().map_err(|e| {
        ApiError::new(
            ErrorCode::MalformedBody,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        scopes: Vec<relaywatch_domain::Scope>,
    }

    #[test]
    fn names_the_failing_field() {
        let e = parse::<Body>(br#"{"name":"x","scopes":["read","root"]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert_eq!(e.errors[0].field, "scopes[1]");
        let e = parse::<Body>(br#"{"scopes":[]}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "name");
        let e = parse::<Body>(br#"{"name":"x","scopes":[],"colour":1}"#).unwrap_err();
        assert_eq!(e.errors[0].field, "colour");
        let e = parse::<Body>(br#""just a string""#).unwrap_err();
        assert_eq!(e.errors[0].field, "body");
        let e = parse::<Body>(br#"{"name":"x","scopes":[1]}"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed, "a number for an enum");
        assert_eq!(e.errors[0].field, "scopes[0]");
        let e = parse::<Body>(br#"[1, 2, 3]"#).unwrap_err();
        assert_eq!(
            e.code,
            ErrorCode::ValidationFailed,
            "an array for an object"
        );
        let e = parse::<Body>(br#"{"name":"x","scopes":[]"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedBody);
        let e = parse::<Body>(br#"{"name":"x","scopes":[]} trailing"#).unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedBody);
    }
}
