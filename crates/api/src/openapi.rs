//! The OpenAPI 3.1 document: the base (info, security scheme, tags) here, paths and schemas collected from the
//! handlers' `#[utoipa::path]` annotations by utoipa-actix-web. `openapi/openapi.json` is a checked-in copy; a test
//! fails when it drifts, and `relaywatch openapi > openapi/openapi.json` regenerates it.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Relaywatch API",
        description = "Email deliverability monitoring for teams that run their own mail relays: delivery history, \
acceptance statistics, DNS and authentication audits, blocklist monitoring and alerts. Authenticate with \
`Authorization: Bearer rw_...` (API key) or a user token from `POST /v1/auth/login`. Errors are RFC 9457 \
problem documents with a stable `code`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "health", description = "Liveness, readiness and metrics"),
        (name = "auth", description = "Login and the caller's identity"),
        (name = "api-keys", description = "Machine credentials of the tenant"),
        (name = "users", description = "People of the tenant"),
        (name = "sending-domains", description = "Domains the tenant sends mail from"),
        (name = "sending-ips", description = "Addresses and networks the tenant sends mail from"),
        (name = "audits", description = "SPF, DKIM, DMARC, MX, reverse DNS, MTA-STS, TLS-RPT, BIMI and SMTP TLS audits of sending domains"),
        (name = "tenants", description = "Installation administration"),
        (name = "ingest", description = "What agents send, and the agents' health"),
        (name = "messages", description = "Delivery history: messages, their attempts, recipients"),
        (name = "stats", description = "Acceptance rates and failures over time"),
        (name = "blocklists", description = "DNS blocklist listings of the tenant's sending IPs and domains, their history, and the zones checked"),
        (name = "webhooks", description = "Signed event deliveries to the tenant's endpoints (Standard Webhooks)"),
        (name = "alerts", description = "Alert rules and the alerts they raise")
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key (`rw_...`) or a user token from `POST /v1/auth/login`. Each operation's security \
                         requirement names the API-key scope it needs (`read`, `write`, `ingest`, `admin`; a user's \
                         scopes follow their role: viewers read, admins and owners also write and administer), or \
                         `installation_admin` for installation administration; an empty list means any valid \
                         credentials.",
                    ))
                    .build(),
            ),
        );
    }
}

/// The full document, as served at `/openapi.json`.
pub fn document() -> utoipa::openapi::OpenApi {
    use utoipa_actix_web::AppExt;
    let (_, doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(crate::routes::configure)
        .split_for_parts();
    doc
}

/// Pretty JSON with a trailing newline: the form checked in as `openapi/openapi.json`.
pub fn document_json() -> String {
    let mut s = document().to_pretty_json().unwrap_or_default();
    s.push('\n');
    s
}
