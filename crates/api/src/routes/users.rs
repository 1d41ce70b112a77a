//! The tenant's people: who may log in, with which role.

use crate::auth::{Admin, Auth};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::{DeleteErrors, ListParams, ReadErrors, WriteErrors, listing};
use crate::startup::AppState;
use actix_web::{HttpResponse, delete, get, post, web};
use chrono::{DateTime, Utc};
use relaywatch_domain::{EmailAddress, Role, UserId};
use relaywatch_store::entities::user;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Shortest accepted password. Length is what makes a password hard to guess; no composition rules.
const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub role: Role,
    pub installation_admin: bool,
    pub created_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
}

impl From<user::Model> for User {
    fn from(u: user::Model) -> Self {
        Self {
            id: UserId(u.id),
            role: u.role.parse().unwrap_or(Role::Viewer),
            email: u.email,
            installation_admin: u.installation_admin,
            created_at: u.created_at,
            last_login_at: u.last_login_at,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub email: String,
    /// At least 12 characters.
    pub password: String,
    pub role: Role,
}

listing!(UserList, User);

/// Add a person to the tenant. The caller must hold every scope the new role has.
#[utoipa::path(
    tag = "users",
    operation_id = "create_user",
    request_body = NewUser,
    responses((status = 201, description = "Created", body = User), WriteErrors),
    security(("bearer" = ["admin"]))
)]
#[post("/v1/users")]
pub async fn create(
    auth: Auth<Admin>,
    state: web::Data<AppState>,
    body: ValidJson<NewUser>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let email = EmailAddress::parse(&body.email)
        .map_err(|e| ApiError::invalid_field("email", e.to_string()))?;
    let chars = body.password.chars().count();
    if !(MIN_PASSWORD_CHARS..=1024).contains(&chars) {
        return Err(ApiError::invalid_field(
            "password",
            format!("must be {MIN_PASSWORD_CHARS} to 1024 characters long"),
        ));
    }
    if !auth.scopes.covers(body.role.scopes()) {
        return Err(ApiError::invalid_field(
            "role",
            "you can only give roles whose rights you hold yourself",
        ));
    }
    let row = state
        .store
        .create_user(auth.tenant, &email, &body.password, body.role, false)
        .await?;
    Ok(HttpResponse::Created().json(User::from(row)))
}

/// List the tenant's users.
#[utoipa::path(
    tag = "users",
    operation_id = "list_users",
    params(ListParams),
    responses((status = 200, description = "One page of users", body = UserList), ReadErrors),
    security(("bearer" = ["admin"]))
)]
#[get("/v1/users")]
pub async fn list(
    auth: Auth<Admin>,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<UserList>> {
    let page = state.store.list_users(auth.tenant, q.page()?).await?;
    Ok(web::Json(UserList::from_page(page, User::from)))
}

/// One user.
#[utoipa::path(
    tag = "users",
    operation_id = "get_user",
    params(("id" = UserId, Path, description = "User id")),
    responses((status = 200, description = "The user", body = User), ReadErrors),
    security(("bearer" = ["admin"]))
)]
#[get("/v1/users/{id}")]
pub async fn get(
    auth: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<UserId>,
) -> ApiResult<web::Json<User>> {
    let row = state
        .store
        .find_user(auth.tenant, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("user"))?;
    Ok(web::Json(row.into()))
}

/// Remove a user; their tokens stop working at once.
#[utoipa::path(
    tag = "users",
    operation_id = "delete_user",
    params(("id" = UserId, Path, description = "User id")),
    responses((status = 204, description = "Removed"), DeleteErrors),
    security(("bearer" = ["admin"]))
)]
#[delete("/v1/users/{id}")]
pub async fn delete(
    auth: Auth<Admin>,
    state: web::Data<AppState>,
    id: web::Path<UserId>,
) -> ApiResult<HttpResponse> {
    if state.store.delete_user(auth.tenant, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("user"))
    }
}
