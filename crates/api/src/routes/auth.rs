//! Login for people, and "who am I" for every caller.

use crate::auth::{Actor, Anyone, Auth};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::json::ValidJson;
use crate::routes::{LoginErrors, ReadErrors};
use crate::startup::AppState;
use actix_web::{get, post, web};
use chrono::{DateTime, Utc};
use relaywatch_domain::{Role, Scope, TenantId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct LoginRequest {
    #[schema(example = "ops@example.com")]
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the token expires.
    pub expires_in: u64,
    pub expires_at: DateTime<Utc>,
}

/// Exchange email and password for a short-lived user token.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "Logged in", body = TokenResponse), LoginErrors),
    security(())
)]
#[post("/v1/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    body: ValidJson<LoginRequest>,
) -> ApiResult<web::Json<TokenResponse>> {
    let body = body.into_inner();
    if body.email.len() > 254 || body.password.len() > 1024 {
        return Err(ApiError::new(
            ErrorCode::InvalidCredentials,
            "wrong email or password",
        ));
    }
    let user = state
        .store
        .authenticate_user(&body.email, &body.password)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidCredentials, "wrong email or password"))?;
    let role: Role = user.role.parse().map_err(ApiError::internal)?;
    let (token, exp) = state
        .jwt
        .issue(UserId(user.id), TenantId(user.tenant_id), role)
        .map_err(ApiError::internal)?;
    Ok(web::Json(TokenResponse {
        access_token: token,
        token_type: "Bearer".into(),
        expires_in: state.jwt.ttl_seconds(),
        expires_at: DateTime::from_timestamp(exp, 0).unwrap_or_else(Utc::now),
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Identity {
    /// `user` (logged in with a token) or `api_key`.
    pub kind: String,
    pub tenant_id: TenantId,
    pub user_id: Option<UserId>,
    pub api_key_id: Option<relaywatch_domain::ApiKeyId>,
    pub role: Option<Role>,
    pub scopes: Vec<Scope>,
    /// May manage tenants of the whole installation.
    pub installation_admin: bool,
}

/// The caller's identity: tenant, scopes, and whether it is a user or an API key.
#[utoipa::path(
    tag = "auth",
    responses((status = 200, description = "The caller", body = Identity), ReadErrors),
    security(("bearer" = []))
)]
#[get("/v1/me")]
pub async fn me(auth: Auth<Anyone>) -> web::Json<Identity> {
    let (kind, user_id, api_key_id, role) = match auth.actor {
        Actor::User { id, role } => ("user", Some(id), None, Some(role)),
        Actor::ApiKey { id } => ("api_key", None, Some(id), None),
    };
    web::Json(Identity {
        kind: kind.into(),
        tenant_id: auth.tenant,
        user_id,
        api_key_id,
        role,
        scopes: auth.scopes.to_vec(),
        installation_admin: auth.installation_admin,
    })
}
