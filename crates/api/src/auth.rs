//! Authentication (who is calling) and authorization (may they do this), as one extractor in the handler's signature.
//!
//! Two kinds of credentials arrive as `Authorization: Bearer ...`:
//! - API keys (`rw_...`) for machines, verified by digest against the store, with explicit scopes;
//! - short-lived JWTs (HS256) for people, issued at login, whose scopes come from the user's role.
//!
//! A handler declares its policy in its signature, `Auth<Write>`, so it cannot forget to check.

use crate::error::{ApiError, ErrorCode};
use crate::startup::AppState;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use futures::future::LocalBoxFuture;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use relaywatch_domain::{ApiKeyId, Role, Scope, ScopeSet, TenantId, UserId};
use serde::{Deserialize, Serialize};
use std::marker::PhantomData;

const ISSUER: &str = "relaywatch";
const AUDIENCE: &str = "relaywatch-api";

/// The claims of a user token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub tid: String,
    pub role: Role,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signing and verification keys for user tokens.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl_seconds: u64,
}

impl JwtKeys {
    pub fn new(secret: &[u8], ttl_seconds: u64) -> anyhow::Result<Self> {
        Ok(Self {
            encoding: EncodingKey::from_secret(secret)?,
            decoding: DecodingKey::from_secret(secret)?,
            ttl_seconds,
        })
    }

    pub fn ttl_seconds(&self) -> u64 {
        self.ttl_seconds
    }

    pub fn issue(
        &self,
        user: UserId,
        tenant: TenantId,
        role: Role,
    ) -> anyhow::Result<(String, i64)> {
        let iat = chrono::Utc::now().timestamp();
        let exp = iat + self.ttl_seconds as i64;
        let claims = Claims {
            sub: user.to_string(),
            tid: tenant.to_string(),
            role,
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat,
            exp,
        };
        Ok((
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?,
            exp,
        ))
    }

    /// Verifies signature, algorithm (HS256 only: `alg: none` and algorithm confusion are refused), issuer, audience
    /// and expiry.
    pub fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.leeway = 5;
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                jsonwebtoken::errors::ErrorKind::ExpiredSignature => ApiError::new(
                    ErrorCode::TokenExpired,
                    "the token has expired; log in again",
                ),
                _ => ApiError::new(ErrorCode::InvalidToken, "the token could not be verified"),
            })
    }
}

/// Who is calling, once authenticated.
#[derive(Debug, Clone)]
pub struct Principal {
    pub tenant: TenantId,
    pub scopes: ScopeSet,
    pub installation_admin: bool,
    /// A shared-host ingest key: deliveries go to the tenant of their sender domain, not to `tenant`.
    pub routes_by_sender: bool,
    pub actor: Actor,
}

#[derive(Debug, Clone)]
pub enum Actor {
    User { id: UserId, role: Role },
    ApiKey { id: ApiKeyId },
}

/// What a handler requires of its caller.
pub trait Policy {
    fn check(principal: &Principal) -> Result<(), ApiError>;
}

fn require(principal: &Principal, scope: Scope) -> Result<(), ApiError> {
    if principal.scopes.contains(scope) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InsufficientScope,
            format!("this operation needs the `{scope}` scope"),
        ))
    }
}

macro_rules! scope_policy {
    ($name:ident, $scope:expr, $doc:literal) => {
        #[doc = $doc]
        pub struct $name;
        impl Policy for $name {
            fn check(p: &Principal) -> Result<(), ApiError> {
                require(p, $scope)
            }
        }
    };
}

scope_policy!(Read, Scope::Read, "Reading the tenant's data.");
scope_policy!(Write, Scope::Write, "Changing the tenant's configuration.");
scope_policy!(Ingest, Scope::Ingest, "Sending log events.");
scope_policy!(Admin, Scope::Admin, "Managing the tenant's keys and users.");

/// Any valid credentials (for `GET /v1/me`).
pub struct Anyone;
impl Policy for Anyone {
    fn check(_: &Principal) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Installation administration: creating and removing tenants.
pub struct InstallationAdmin;
impl Policy for InstallationAdmin {
    fn check(p: &Principal) -> Result<(), ApiError> {
        if p.installation_admin {
            Ok(())
        } else {
            Err(ApiError::new(
                ErrorCode::InstallationAdminRequired,
                "only installation administrators may manage tenants",
            ))
        }
    }
}

/// The extractor: `Auth<Write>` in a handler's arguments authenticates the request and checks the policy.
pub struct Auth<P: Policy> {
    pub principal: Principal,
    _policy: PhantomData<P>,
}

impl<P: Policy> Auth<P> {
    pub fn tenant(&self) -> TenantId {
        self.principal.tenant
    }
}

impl<P: Policy> std::ops::Deref for Auth<P> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.principal
    }
}

impl<P: Policy + 'static> FromRequest for Auth<P> {
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        // Decided by `authenticate_first`, which every application route passes through.
        let decided = req
            .extensions()
            .get::<Authenticated>()
            .map(|a| a.0.clone())
            .unwrap_or_else(|| Err(ApiError::internal("authentication middleware missing")));
        Box::pin(async move {
            let principal = decided?;
            P::check(&principal)?;
            Ok(Auth {
                principal,
                _policy: PhantomData,
            })
        })
    }
}

/// The outcome of checking a request's credentials, left in its extensions by [`authenticate_first`].
#[derive(Clone)]
struct Authenticated(Result<Principal, ApiError>);

/// Middleware: checks the credentials before a handler's extractors run. actix polls a handler's extractors
/// together and answers with the first that fails, so with the check inside the extractor a request with a revoked
/// key and a bad body got the body's 422 (describing the body to a caller who may not send it) instead of its 401.
pub async fn authenticate_first(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if let Some(state) = req.app_data::<web::Data<AppState>>().cloned() {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .cloned();
        // Routes without credentials (health, login, docs) never look at the outcome; no header costs nothing.
        let outcome = credentials(&state, header.as_ref()).await;
        req.extensions_mut().insert(Authenticated(outcome));
    }
    next.call(req).await
}

/// Who the `Authorization` header says is calling.
async fn credentials(
    state: &AppState,
    header: Option<&actix_web::http::header::HeaderValue>,
) -> Result<Principal, ApiError> {
    let Some(header) = header else {
        return Err(ApiError::new(
            ErrorCode::MissingCredentials,
            "send Authorization: Bearer <token or API key>",
        ));
    };
    let Ok(token) = header.to_str() else {
        return Err(ApiError::new(
            ErrorCode::InvalidToken,
            "the Authorization header is not readable text",
        ));
    };
    let Some(token) = token
        .strip_prefix("Bearer ")
        .or_else(|| token.strip_prefix("bearer "))
    else {
        return Err(ApiError::new(
            ErrorCode::MissingCredentials,
            "use the Bearer scheme: Authorization: Bearer <token>",
        ));
    };
    authenticate(state, token.trim()).await
}

async fn authenticate(state: &AppState, token: &str) -> Result<Principal, ApiError> {
    if token.starts_with(relaywatch_store::secrets::API_KEY_PREFIX) {
        let key = state.store.verify_api_key(token).await?.ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidApiKey,
                "the API key is unknown, revoked or expired",
            )
        })?;
        return Ok(Principal {
            tenant: key.tenant,
            scopes: key.scopes,
            installation_admin: key.installation_admin,
            routes_by_sender: key.routes_by_sender,
            actor: Actor::ApiKey { id: key.id },
        });
    }
    let claims = state.jwt.verify(token)?;
    let invalid = || ApiError::new(ErrorCode::InvalidToken, "the token could not be verified");
    let user_id: UserId = claims.sub.parse().map_err(|_| invalid())?;
    let tenant: TenantId = claims.tid.parse().map_err(|_| invalid())?;
    // The token is short-lived, but a deleted or disabled user loses access at once.
    let user = state
        .store
        .find_user(tenant, user_id)
        .await?
        .filter(|u| u.disabled_at.is_none())
        .ok_or_else(invalid)?;
    let role: Role = user.role.parse().map_err(|_| invalid())?;
    Ok(Principal {
        tenant,
        scopes: role.scopes(),
        installation_admin: user.installation_admin,
        routes_by_sender: false,
        actor: Actor::User { id: user_id, role },
    })
}
