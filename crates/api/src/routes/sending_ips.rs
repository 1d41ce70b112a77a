//! The addresses and networks the tenant sends from.

use crate::auth::{Auth, Read, Write};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::{DeleteErrors, ListParams, ReadErrors, WriteErrors, listing, optional_text};
use crate::startup::AppState;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use relaywatch_domain::{DomainName, IpNetwork, SendingIpId};
use relaywatch_store::entities::sending_ip;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct SendingIp {
    pub id: SendingIpId,
    /// A single address (`192.0.2.10`) or a network (`192.0.2.0/28`, `2001:db8::/48`).
    #[schema(example = "192.0.2.10")]
    pub network: String,
    pub description: Option<String>,
    /// The name the server at this address gives in HELO/EHLO: the reverse-DNS audit checks that the PTR name equals
    /// it.
    #[schema(example = "mx1.example.com")]
    pub helo_name: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<sending_ip::Model> for SendingIp {
    fn from(r: sending_ip::Model) -> Self {
        Self {
            id: SendingIpId(r.id),
            network: r.network,
            description: r.description,
            helo_name: r.helo_name,
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSendingIp {
    /// An IPv4 or IPv6 address, or a CIDR network no wider than /16 (IPv4) or /32 (IPv6).
    #[schema(example = "192.0.2.10")]
    pub network: String,
    #[schema(example = "mx1 outbound")]
    pub description: Option<String>,
    /// The HELO/EHLO name of the server at this address (a domain name), when known.
    #[schema(example = "mx1.example.com")]
    pub helo_name: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendingIpUpdate {
    /// Replaces the description; null or empty clears it, absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub description: Option<Option<String>>,
    /// Replaces the HELO name; null or empty clears it, absent leaves it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub helo_name: Option<Option<String>>,
}

/// A field that is present (`Some`, its value possibly null) as opposed to absent (`None`, through `default`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// A HELO name as given: trimmed, empty meaning none, otherwise a domain name (422 naming the field if not).
fn helo_name(value: Option<&str>) -> Result<Option<DomainName>, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => DomainName::parse(v)
            .map(Some)
            .map_err(|e| ApiError::invalid_field("helo_name", format!("`{v}` {e}"))),
    }
}

listing!(SendingIpList, SendingIp);

/// Register a sending address or network.
#[utoipa::path(
    tag = "sending-ips",
    operation_id = "create_sending_ip",
    request_body = NewSendingIp,
    responses((status = 201, description = "Registered", body = SendingIp), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/sending-ips")]
pub async fn create(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    body: ValidJson<NewSendingIp>,
) -> ApiResult<HttpResponse> {
    let network = IpNetwork::parse(&body.network)
        .map_err(|e| ApiError::invalid_field("network", e.to_string()))?;
    let description = optional_text("description", body.description.as_deref(), 500)?;
    let helo = helo_name(body.helo_name.as_deref())?;
    let row = state
        .store
        .add_sending_ip(auth.tenant, &network, description.as_deref(), helo.as_ref())
        .await?;
    Ok(HttpResponse::Created().json(SendingIp::from(row)))
}

/// List the tenant's sending addresses and networks.
#[utoipa::path(
    tag = "sending-ips",
    operation_id = "list_sending_ips",
    params(ListParams),
    responses((status = 200, description = "One page of sending IPs", body = SendingIpList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/sending-ips")]
pub async fn list(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<SendingIpList>> {
    let page = state.store.list_sending_ips(auth.tenant, q.page()?).await?;
    Ok(web::Json(SendingIpList::from_page(page, SendingIp::from)))
}

/// One sending address or network.
#[utoipa::path(
    tag = "sending-ips",
    operation_id = "get_sending_ip",
    params(("id" = SendingIpId, Path, description = "Sending IP id")),
    responses((status = 200, description = "The sending IP", body = SendingIp), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/sending-ips/{id}")]
pub async fn get(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    id: web::Path<SendingIpId>,
) -> ApiResult<web::Json<SendingIp>> {
    let row = state
        .store
        .find_sending_ip(auth.tenant, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("sending IP"))?;
    Ok(web::Json(row.into()))
}

/// Change a sending IP's description or HELO name (fields left out stay as they are).
#[utoipa::path(
    tag = "sending-ips",
    operation_id = "update_sending_ip",
    params(("id" = SendingIpId, Path, description = "Sending IP id")),
    request_body = SendingIpUpdate,
    responses((status = 200, description = "Updated", body = SendingIp), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[patch("/v1/sending-ips/{id}")]
pub async fn update(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<SendingIpId>,
    body: ValidJson<SendingIpUpdate>,
) -> ApiResult<web::Json<SendingIp>> {
    let description = body
        .description
        .as_ref()
        .map(|d| optional_text("description", d.as_deref(), 500))
        .transpose()?;
    let helo = body
        .helo_name
        .as_ref()
        .map(|h| helo_name(h.as_deref()))
        .transpose()?;
    let row = state
        .store
        .update_sending_ip(
            auth.tenant,
            *id,
            description.as_ref().map(|d| d.as_deref()),
            helo.as_ref().map(|h| h.as_ref()),
        )
        .await?
        .ok_or_else(|| ApiError::not_found("sending IP"))?;
    Ok(web::Json(row.into()))
}

/// Stop monitoring a sending address or network.
#[utoipa::path(
    tag = "sending-ips",
    operation_id = "delete_sending_ip",
    params(("id" = SendingIpId, Path, description = "Sending IP id")),
    responses((status = 204, description = "Removed"), DeleteErrors),
    security(("bearer" = ["write"]))
)]
#[delete("/v1/sending-ips/{id}")]
pub async fn delete(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<SendingIpId>,
) -> ApiResult<HttpResponse> {
    if state.store.delete_sending_ip(auth.tenant, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("sending IP"))
    }
}
