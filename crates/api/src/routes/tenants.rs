//! Installation administration: the tenants of this Relaywatch. Only installation admins get here.

use crate::auth::{Auth, InstallationAdmin};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::api_keys::CreatedApiKey;
use crate::routes::{DeleteErrors, ListParams, ReadErrors, WriteErrors, listing, required_name};
use crate::startup::AppState;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use relaywatch_domain::{DomainName, IpNetwork, TenantId};
use relaywatch_store::entities::tenant;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

const MAX_RETENTION_DAYS: i32 = 3650;

#[derive(Debug, Serialize, ToSchema)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// Days of delivery history kept.
    pub retention_days: i32,
    pub created_at: DateTime<Utc>,
}

impl From<tenant::Model> for Tenant {
    fn from(t: tenant::Model) -> Self {
        Self {
            id: TenantId(t.id),
            name: t.name,
            retention_days: t.retention_days,
            created_at: t.created_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTenant {
    #[schema(example = "Acme mail team")]
    pub name: String,
    /// Sending domains to register at once.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Sending IPs or networks to register at once.
    #[serde(default)]
    pub ips: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedTenant {
    pub tenant: Tenant,
    /// An admin key of the new tenant (scopes read, write, ingest, admin), shown once.
    pub api_key: CreatedApiKey,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantUpdate {
    pub name: Option<String>,
    /// 1 to 3650.
    pub retention_days: Option<i32>,
}

listing!(TenantList, Tenant);

/// Create a tenant, optionally with its sending domains and IPs, and get its first admin key.
#[utoipa::path(
    tag = "tenants",
    operation_id = "create_tenant",
    request_body = NewTenant,
    responses((status = 201, description = "Created", body = CreatedTenant), WriteErrors),
    security(("bearer" = ["installation_admin"]))
)]
#[post("/v1/tenants")]
pub async fn create(
    _auth: Auth<InstallationAdmin>,
    state: web::Data<AppState>,
    body: ValidJson<NewTenant>,
) -> ApiResult<HttpResponse> {
    let name = required_name("name", &body.name, 200)?;
    let domains = body
        .domains
        .iter()
        .enumerate()
        .map(|(i, d)| {
            DomainName::parse(d)
                .map_err(|e| ApiError::invalid_field(format!("domains[{i}]"), format!("`{d}` {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ips = body
        .ips
        .iter()
        .enumerate()
        .map(|(i, n)| {
            IpNetwork::parse(n)
                .map_err(|e| ApiError::invalid_field(format!("ips[{i}]"), e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let created = state
        .store
        .create_tenant_with_admin_key(&name, &domains, &ips)
        .await?;
    Ok(HttpResponse::Created().json(CreatedTenant {
        tenant: created.tenant.into(),
        api_key: CreatedApiKey {
            api_key: created.key.into(),
            key: created.plaintext_key,
        },
    }))
}

/// List every tenant of the installation.
#[utoipa::path(
    tag = "tenants",
    operation_id = "list_tenants",
    params(ListParams),
    responses((status = 200, description = "One page of tenants", body = TenantList), ReadErrors),
    security(("bearer" = ["installation_admin"]))
)]
#[get("/v1/tenants")]
pub async fn list(
    _auth: Auth<InstallationAdmin>,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<TenantList>> {
    let page = state.store.list_all_tenants(q.page()?).await?;
    Ok(web::Json(TenantList::from_page(page, Tenant::from)))
}

/// One tenant.
#[utoipa::path(
    tag = "tenants",
    operation_id = "get_tenant",
    params(("id" = TenantId, Path, description = "Tenant id")),
    responses((status = 200, description = "The tenant", body = Tenant), ReadErrors),
    security(("bearer" = ["installation_admin"]))
)]
#[get("/v1/tenants/{id}")]
pub async fn get(
    _auth: Auth<InstallationAdmin>,
    state: web::Data<AppState>,
    id: web::Path<TenantId>,
) -> ApiResult<web::Json<Tenant>> {
    let row = state
        .store
        .find_tenant(*id)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(web::Json(row.into()))
}

/// Rename a tenant or change its retention.
#[utoipa::path(
    tag = "tenants",
    operation_id = "update_tenant",
    params(("id" = TenantId, Path, description = "Tenant id")),
    request_body = TenantUpdate,
    responses((status = 200, description = "Updated", body = Tenant), WriteErrors),
    security(("bearer" = ["installation_admin"]))
)]
#[patch("/v1/tenants/{id}")]
pub async fn update(
    _auth: Auth<InstallationAdmin>,
    state: web::Data<AppState>,
    id: web::Path<TenantId>,
    body: ValidJson<TenantUpdate>,
) -> ApiResult<web::Json<Tenant>> {
    let name = body
        .name
        .as_deref()
        .map(|n| required_name("name", n, 200))
        .transpose()?;
    if body
        .retention_days
        .is_some_and(|d| !(1..=MAX_RETENTION_DAYS).contains(&d))
    {
        return Err(ApiError::invalid_field(
            "retention_days",
            format!("must be between 1 and {MAX_RETENTION_DAYS}"),
        ));
    }
    let row = state
        .store
        .update_tenant(*id, name.as_deref(), body.retention_days)
        .await?
        .ok_or_else(|| ApiError::not_found("tenant"))?;
    Ok(web::Json(row.into()))
}

/// Delete a tenant and everything it owns.
#[utoipa::path(
    tag = "tenants",
    operation_id = "delete_tenant",
    params(("id" = TenantId, Path, description = "Tenant id")),
    responses((status = 204, description = "Deleted"), DeleteErrors),
    security(("bearer" = ["installation_admin"]))
)]
#[delete("/v1/tenants/{id}")]
pub async fn delete(
    auth: Auth<InstallationAdmin>,
    state: web::Data<AppState>,
    id: web::Path<TenantId>,
) -> ApiResult<HttpResponse> {
    if *id == auth.tenant {
        return Err(ApiError::invalid_field(
            "id",
            "you cannot delete the tenant your own credentials belong to",
        ));
    }
    if state.store.delete_tenant(*id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("tenant"))
    }
}
