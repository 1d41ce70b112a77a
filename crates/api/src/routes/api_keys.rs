//! The tenant's API keys: create (the key is shown once), list, inspect, revoke.

use crate::auth::{Actor, Admin, Auth};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::{DeleteErrors, ListParams, ReadErrors, WriteErrors, listing, required_name};
use crate::startup::AppState;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use relaywatch_domain::{ApiKeyId, Scope, ScopeSet};
use relaywatch_store::api_keys::NewKey;
use relaywatch_store::entities::api_key;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: ApiKeyId,
    pub name: String,
    /// The first characters of the key, to tell keys apart; the key itself is never shown again.
    #[schema(example = "rw_x7Kp2Qa")]
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub installation_admin: bool,
    pub created_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl From<api_key::Model> for ApiKey {
    fn from(k: api_key::Model) -> Self {
        Self {
            id: ApiKeyId(k.id),
            scopes: ScopeSet::parse_db(&k.scopes)
                .map(|s| s.to_vec())
                .unwrap_or_default(),
            name: k.name,
            prefix: k.prefix,
            installation_admin: k.installation_admin,
            created_at: k.created_at,
            expires_at: k.expires_at,
            last_used_at: k.last_used_at,
            revoked_at: k.revoked_at,
        }
    }
}

/// A key just created: the only response that carries the key itself.
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The secret key. Store it now: Relaywatch keeps only its hash.
    #[schema(example = "rw_x7Kp2Qa...")]
    pub key: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewApiKey {
    /// What the key is for, e.g. `agent on mx1` or `billing app`.
    pub name: String,
    /// At least one; the caller must hold every scope it grants.
    pub scopes: Vec<Scope>,
    /// Optional expiry; the key stops working at that time.
    pub expires_at: Option<DateTime<Utc>>,
}

listing!(ApiKeyList, ApiKey);

/// Create an API key. The response carries the key once.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "create_api_key",
    request_body = NewApiKey,
    responses((status = 201, description = "Created; `key` is shown only now", body = CreatedApiKey), WriteErrors),
    security(("bearer" = ["admin"]))
)]
#[post("/v1/api-keys")]
pub async fn create(
    auth: Auth<Admin>,
    state: web::Data<AppState>,
    body: ValidJson<NewApiKey>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let name = required_name("name", &body.name, 200)?;
    let scopes: ScopeSet = body.scopes.iter().copied().collect();
    if scopes.is_empty() {
        return Err(ApiError::invalid_field(
            "scopes",
            "grant at least one of read, write, ingest, admin",
        ));
    }
    if !auth.scopes.covers(scopes) {
        return Err(ApiError::invalid_field(
            "scopes",
            "a key can only grant scopes its creator holds",
        ));
    }
    if body.expires_at.is_some_and(|t| t <= Utc::now()) {
        return Err(ApiError::invalid_field(
            "expires_at",
            "must be in the future",
        ));
    }
    let created_by_user = match auth.actor {
        Actor::User { id, .. } => Some(id),
        Actor::ApiKey { .. } => None,
    };
    let new = NewKey {
        name: &name,
        scopes,
        installation_admin: false,
        expires_at: body.expires_at,
        created_by_user,
        routes_by_sender: false,
    };
    let (row, key) = state.store.issue_api_key(auth.tenant, new).await?;
    Ok(HttpResponse::Created().json(CreatedApiKey {
        api_key: row.into(),
        key,
    }))
}

/// List the tenant's API keys, revoked ones included.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "list_api_keys",
    params(ListParams),
    responses((status = 200, description = "One page of keys", body = ApiKeyList), ReadErrors),
    security(("bearer" = ["admin"]))
)]
#[get("/v1/api-keys")]
pub async fn list(
    auth: Auth<Admin>,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<ApiKeyList>> {
    let page = state.store.list_api_keys(auth.tenant, q.page()?).await?;
    Ok(web::Json(ApiKeyList::from_page(page, ApiKey::from)))
}

/// One API key (without its secret).
#[utoipa::path(
    tag = "api-keys",
    operation_id = "get_api_key",
    params(("id" = ApiKeyId, Path, description = "Key id")),
    responses((status = 200, description = "The key", body = ApiKey), ReadErrors),
    security(("bearer" = ["admin"]))
)]
#[get("/v1/api-keys/{id}")]
pub async fn get(
    auth: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<ApiKeyId>,
) -> ApiResult<web::Json<ApiKey>> {
    let row = state
        .store
        .find_api_key(auth.tenant, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    Ok(web::Json(row.into()))
}

/// Revoke an API key: it stops working at once. Revoking twice is harmless.
#[utoipa::path(
    tag = "api-keys",
    operation_id = "revoke_api_key",
    params(("id" = ApiKeyId, Path, description = "Key id")),
    responses((status = 200, description = "Revoked", body = ApiKey), DeleteErrors),
    security(("bearer" = ["admin"]))
)]
#[delete("/v1/api-keys/{id}")]
pub async fn revoke(
    auth: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<ApiKeyId>,
) -> ApiResult<web::Json<ApiKey>> {
    let row = state
        .store
        .revoke_api_key(auth.tenant, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("API key"))?;
    Ok(web::Json(row.into()))
}
