//! The domains the tenant sends from, with the DKIM selectors to audit.

use crate::auth::{Auth, Read, Write};
use crate::error::{ApiError, ApiResult};
use crate::json::ValidJson;
use crate::routes::{DeleteErrors, ListParams, ReadErrors, WriteErrors, listing};
use crate::startup::AppState;
use actix_web::{HttpResponse, delete, get, patch, post, web};
use chrono::{DateTime, Utc};
use relaywatch_domain::{DkimSelector, DomainName, SendingDomainId};
use relaywatch_store::entities::{observed_dkim_selector, sending_domain};
use relaywatch_store::sending_domains::selectors_from_db;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// More selectors than this is a configuration mistake, not a real signing setup.
const MAX_SELECTORS: usize = 32;

#[derive(Debug, Serialize, ToSchema)]
pub struct SendingDomain {
    pub id: SendingDomainId,
    #[schema(example = "mail.example.com")]
    pub domain: String,
    /// DKIM selectors audited at `<selector>._domainkey.<domain>`.
    pub dkim_selectors: Vec<String>,
    /// Selectors the signer (opendkim's `s=`/`d=` log lines) was seen using for this domain, registered or not.
    /// Audits also check those seen during the last 30 days.
    pub learned_dkim_selectors: Vec<LearnedSelector>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A DKIM selector learned from the mail log.
#[derive(Debug, Serialize, ToSchema)]
pub struct LearnedSelector {
    #[schema(example = "mail2024")]
    pub selector: String,
    /// The earliest and latest delivery attempt of a message signed with it.
    pub first_seen_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

impl SendingDomain {
    fn new(d: sending_domain::Model, learned: &[observed_dkim_selector::Model]) -> Self {
        Self {
            id: SendingDomainId(d.id),
            dkim_selectors: selectors_from_db(&d.dkim_selectors),
            learned_dkim_selectors: learned
                .iter()
                .filter(|o| o.domain == d.domain)
                .map(|o| LearnedSelector {
                    selector: o.selector.clone(),
                    first_seen_at: o.first_seen_at,
                    last_seen_at: o.last_seen_at,
                })
                .collect(),
            domain: d.domain,
            created_at: d.created_at,
            updated_at: d.updated_at,
        }
    }

    /// One domain with its learned selectors.
    async fn load(
        state: &AppState,
        tenant: relaywatch_domain::TenantId,
        d: sending_domain::Model,
    ) -> ApiResult<Self> {
        let learned = state
            .store
            .observed_selectors(tenant, std::slice::from_ref(&d.domain), None)
            .await?;
        Ok(Self::new(d, &learned))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSendingDomain {
    /// A fully qualified domain name (A-label form for internationalised names).
    #[schema(example = "mail.example.com")]
    pub domain: String,
    #[serde(default)]
    #[schema(example = json!(["s2024"]))]
    pub dkim_selectors: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendingDomainUpdate {
    /// Replaces the list of DKIM selectors.
    pub dkim_selectors: Vec<String>,
}

listing!(SendingDomainList, SendingDomain);

fn parse_selectors(raw: &[String]) -> Result<Vec<DkimSelector>, ApiError> {
    if raw.len() > MAX_SELECTORS {
        return Err(ApiError::invalid_field(
            "dkim_selectors",
            format!("at most {MAX_SELECTORS} selectors"),
        ));
    }
    raw.iter()
        .enumerate()
        .map(|(i, s)| {
            DkimSelector::parse(s)
                .map_err(|e| ApiError::invalid_field(format!("dkim_selectors[{i}]"), e.to_string()))
        })
        .collect()
}

/// Register a sending domain.
#[utoipa::path(
    tag = "sending-domains",
    operation_id = "create_sending_domain",
    request_body = NewSendingDomain,
    responses((status = 201, description = "Registered", body = SendingDomain), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[post("/v1/sending-domains")]
pub async fn create(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    body: ValidJson<NewSendingDomain>,
) -> ApiResult<HttpResponse> {
    let domain = DomainName::parse(&body.domain)
        .map_err(|e| ApiError::invalid_field("domain", format!("`{}` {e}", body.domain)))?;
    let selectors = parse_selectors(&body.dkim_selectors)?;
    let row = state
        .store
        .add_sending_domain(auth.tenant, &domain, &selectors)
        .await?;
    // Mail may have shown selectors before the domain was registered.
    Ok(HttpResponse::Created().json(SendingDomain::load(&state, auth.tenant, row).await?))
}

/// List the tenant's sending domains.
#[utoipa::path(
    tag = "sending-domains",
    operation_id = "list_sending_domains",
    params(ListParams),
    responses((status = 200, description = "One page of domains", body = SendingDomainList), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/sending-domains")]
pub async fn list(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<ListParams>,
) -> ApiResult<web::Json<SendingDomainList>> {
    let page = state
        .store
        .list_sending_domains(auth.tenant, q.page()?)
        .await?;
    // One query for the whole page's learned selectors.
    let domains: Vec<String> = page.items.iter().map(|d| d.domain.clone()).collect();
    let learned = state
        .store
        .observed_selectors(auth.tenant, &domains, None)
        .await?;
    Ok(web::Json(SendingDomainList::from_page(page, |d| {
        SendingDomain::new(d, &learned)
    })))
}

/// One sending domain.
#[utoipa::path(
    tag = "sending-domains",
    operation_id = "get_sending_domain",
    params(("id" = SendingDomainId, Path, description = "Sending domain id")),
    responses((status = 200, description = "The domain", body = SendingDomain), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/sending-domains/{id}")]
pub async fn get(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    id: web::Path<SendingDomainId>,
) -> ApiResult<web::Json<SendingDomain>> {
    let row = state
        .store
        .find_sending_domain(auth.tenant, *id)
        .await?
        .ok_or_else(|| ApiError::not_found("sending domain"))?;
    Ok(web::Json(
        SendingDomain::load(&state, auth.tenant, row).await?,
    ))
}

/// Replace a sending domain's DKIM selectors.
#[utoipa::path(
    tag = "sending-domains",
    operation_id = "update_sending_domain",
    params(("id" = SendingDomainId, Path, description = "Sending domain id")),
    request_body = SendingDomainUpdate,
    responses((status = 200, description = "Updated", body = SendingDomain), WriteErrors),
    security(("bearer" = ["write"]))
)]
#[patch("/v1/sending-domains/{id}")]
pub async fn update(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<SendingDomainId>,
    body: ValidJson<SendingDomainUpdate>,
) -> ApiResult<web::Json<SendingDomain>> {
    let selectors = parse_selectors(&body.dkim_selectors)?;
    let row = state
        .store
        .set_dkim_selectors(auth.tenant, *id, &selectors)
        .await?
        .ok_or_else(|| ApiError::not_found("sending domain"))?;
    Ok(web::Json(
        SendingDomain::load(&state, auth.tenant, row).await?,
    ))
}

/// Stop monitoring a sending domain.
#[utoipa::path(
    tag = "sending-domains",
    operation_id = "delete_sending_domain",
    params(("id" = SendingDomainId, Path, description = "Sending domain id")),
    responses((status = 204, description = "Removed"), DeleteErrors),
    security(("bearer" = ["write"]))
)]
#[delete("/v1/sending-domains/{id}")]
pub async fn delete(
    auth: Auth<Write>,
    state: web::Data<AppState>,
    id: web::Path<SendingDomainId>,
) -> ApiResult<HttpResponse> {
    if state.store.delete_sending_domain(auth.tenant, *id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found("sending domain"))
    }
}
