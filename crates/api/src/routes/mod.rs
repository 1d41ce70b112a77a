//! One file per resource. Each handler authorizes through its `Auth<Policy>` argument, parses input into domain
//! types, calls the store and maps rows to the response types declared beside it.

pub mod alerts;
pub mod api_keys;
pub mod audits;
pub mod auth;
pub mod blocklists;
pub mod health;
pub mod ingest;
pub mod messages;
pub mod sending_domains;
pub mod sending_ips;
pub mod stats;
pub mod tenants;
pub mod users;
pub mod webhooks;

use crate::error::{ApiError, ErrorCode};
use relaywatch_store::PageRequest;
use serde::Deserialize;
use std::collections::BTreeMap;
use utoipa::IntoParams;
use utoipa::openapi::{Content, Ref, RefOr, Response, ResponseBuilder};
use utoipa_actix_web::service_config::ServiceConfig;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(health::metrics)
        .service(auth::login)
        .service(auth::me)
        .service(api_keys::create)
        .service(api_keys::list)
        .service(api_keys::get)
        .service(api_keys::revoke)
        .service(users::create)
        .service(users::list)
        .service(users::get)
        .service(users::delete)
        .service(sending_domains::create)
        .service(sending_domains::list)
        .service(sending_domains::get)
        .service(sending_domains::update)
        .service(sending_domains::delete)
        .service(sending_ips::create)
        .service(sending_ips::list)
        .service(sending_ips::get)
        .service(sending_ips::update)
        .service(sending_ips::delete)
        .service(audits::request)
        .service(audits::history)
        .service(audits::latest)
        .service(audits::get)
        .service(audits::get_schedule)
        .service(audits::set_schedule)
        .service(tenants::create)
        .service(tenants::list)
        .service(tenants::get)
        .service(tenants::update)
        .service(tenants::delete)
        .service(ingest::ingest)
        .service(ingest::heartbeat)
        .service(ingest::agents)
        .service(ingest::unrouted_senders)
        .service(messages::list)
        .service(messages::get)
        .service(messages::recipient)
        .service(stats::deliveries)
        .service(stats::bounces)
        .service(blocklists::list)
        .service(blocklists::history)
        .service(blocklists::check)
        .service(blocklists::zone_list)
        .service(blocklists::set_overrides)
        .service(webhooks::create)
        .service(webhooks::list)
        .service(webhooks::get)
        .service(webhooks::update)
        .service(webhooks::delete)
        .service(webhooks::rotate_secret)
        .service(webhooks::test)
        .service(webhooks::deliveries)
        .service(webhooks::delivery)
        .service(webhooks::replay)
        .service(alerts::create_rule)
        .service(alerts::list_rules)
        .service(alerts::get_rule)
        .service(alerts::update_rule)
        .service(alerts::delete_rule)
        .service(alerts::list_alerts);
}

/// A query parameter with its surrounding spaces trimmed; absent when empty.
pub(crate) fn non_empty(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// `?limit=&cursor=` of every listing.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Items per page, 1 to 500 (default 100).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl ListParams {
    pub fn page(&self) -> Result<PageRequest, ApiError> {
        let limit = self.limit.unwrap_or(100);
        if !(1..=PageRequest::MAX_LIMIT).contains(&limit) {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("limit must be between 1 and {}", PageRequest::MAX_LIMIT),
            ));
        }
        let after = match &self.cursor {
            None => None,
            Some(c) => Some(uuid::Uuid::parse_str(c).map_err(|_| {
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    "cursor is not one this API returned",
                )
            })?),
        };
        Ok(PageRequest { after, limit })
    }
}

/// Declares a `{ items, next_cursor }` listing type for one resource.
macro_rules! listing {
    ($name:ident, $item:ty) => {
        #[derive(Debug, serde::Serialize, utoipa::ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` to get the next page; absent on the last page.
            pub next_cursor: Option<String>,
        }

        impl $name {
            pub fn from_page<R>(page: relaywatch_store::Page<R>, f: impl Fn(R) -> $item) -> Self {
                Self {
                    next_cursor: page.next_cursor.map(|c| c.to_string()),
                    items: page.items.into_iter().map(f).collect(),
                }
            }
        }
    };
}
pub(crate) use listing;

fn problem_responses(list: &[(&str, &str)]) -> BTreeMap<String, RefOr<Response>> {
    list.iter()
        .map(|(status, description)| {
            let response = ResponseBuilder::new()
                .description(*description)
                .content(
                    "application/problem+json",
                    Content::new(Some(Ref::from_schema_name("Problem"))),
                )
                .build();
            (status.to_string(), RefOr::T(response))
        })
        .collect()
}

const UNAUTHORIZED: (&str, &str) = (
    "401",
    "Missing, invalid, expired or revoked credentials (`missing_credentials`, `invalid_token`, `token_expired`, `invalid_api_key`)",
);
const FORBIDDEN: (&str, &str) = (
    "403",
    "The credentials lack the scope or role this needs (`insufficient_scope`, `installation_admin_required`)",
);
const NOT_FOUND: (&str, &str) = ("404", "No such object for this tenant (`not_found`)");
const BAD_QUERY: (&str, &str) = (
    "400",
    "Invalid query string or body that is not JSON (`invalid_query`, `malformed_body`)",
);
const CONFLICT: (&str, &str) = ("409", "The object exists already (`already_exists`)");
const TOO_LARGE: (&str, &str) = (
    "413",
    "The body is larger than the configured limit (`payload_too_large`)",
);
const MEDIA: (&str, &str) = (
    "415",
    "The body is not application/json (`unsupported_media_type`)",
);
const INVALID: (&str, &str) = (
    "422",
    "A field is invalid; `errors` names it (`validation_failed`)",
);

/// Error responses of an authenticated read.
pub struct ReadErrors;
impl utoipa::IntoResponses for ReadErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problem_responses(&[BAD_QUERY, UNAUTHORIZED, FORBIDDEN, NOT_FOUND])
    }
}

/// Error responses of an authenticated write with a JSON body.
pub struct WriteErrors;
impl utoipa::IntoResponses for WriteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problem_responses(&[
            BAD_QUERY,
            UNAUTHORIZED,
            FORBIDDEN,
            NOT_FOUND,
            CONFLICT,
            TOO_LARGE,
            MEDIA,
            INVALID,
        ])
    }
}

/// Error responses of an action on a webhook endpoint or delivery (test, replay).
pub struct WebhookActionErrors;
impl utoipa::IntoResponses for WebhookActionErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problem_responses(&[
            BAD_QUERY,
            UNAUTHORIZED,
            FORBIDDEN,
            NOT_FOUND,
            (
                "409",
                "The endpoint is disabled (`webhook_disabled`), or the delivery is queued or being delivered \
                 already (`delivery_in_progress`)",
            ),
            TOO_LARGE,
            MEDIA,
            INVALID,
        ])
    }
}

/// Error responses of an authenticated delete.
pub struct DeleteErrors;
impl utoipa::IntoResponses for DeleteErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problem_responses(&[UNAUTHORIZED, FORBIDDEN, NOT_FOUND])
    }
}

/// Error responses of login.
pub struct LoginErrors;
impl utoipa::IntoResponses for LoginErrors {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        problem_responses(&[
            BAD_QUERY,
            ("401", "Wrong email or password (`invalid_credentials`)"),
            TOO_LARGE,
            MEDIA,
            INVALID,
        ])
    }
}

/// Parses an optional text field with a length limit into a trimmed value (`None` for empty).
pub(crate) fn optional_text(
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) if v.chars().count() > max => Err(ApiError::invalid_field(
            field,
            format!("must be at most {max} characters"),
        )),
        Some(v) if v.chars().any(char::is_control) => Err(ApiError::invalid_field(
            field,
            "must not contain control characters",
        )),
        Some(v) => Ok(Some(v.to_string())),
    }
}

/// Parses a required name: 1 to `max` characters, no control characters.
pub(crate) fn required_name(field: &str, value: &str, max: usize) -> Result<String, ApiError> {
    optional_text(field, Some(value), max)?
        .ok_or_else(|| ApiError::invalid_field(field, "must not be empty"))
}
