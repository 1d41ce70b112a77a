//! Builds the application from settings, binds its listener (port 0 picks a free port, as tests do) and runs it
//! until stopped. On SIGTERM or SIGINT the server stops accepting, finishes in-flight requests and returns.

use crate::auth::JwtKeys;
use crate::error::{ApiError, ErrorCode, extractors};
use crate::metrics::Metrics;
use crate::settings::Settings;
use actix_web::dev::{Server, ServerHandle, Service};
use actix_web::{App, HttpServer, web};
use relaywatch_store::Store;
use std::net::TcpListener;

use std::time::Instant;
use utoipa_actix_web::AppExt;
use utoipa_swagger_ui::SwaggerUi;

/// Shared by every request handler.
pub struct AppState {
    pub store: Store,
    pub jwt: JwtKeys,
    pub metrics: Metrics,
    pub settings: Settings,
    pub statsd: Option<crate::statsd::Statsd>,
    /// Blocklist lookups for checks on demand (sweeps run in the worker).
    pub blocklists: relaywatch_worker::blocklist::Checker,
    /// Encrypts webhook signing secrets at rest (key derived from the installation's signing secret).
    pub cipher: relaywatch_store::secrets::SecretCipher,
    /// Vets webhook URLs when endpoints are created or changed.
    pub webhook_guard: relaywatch_webhooks::Guard,
}

pub struct Application {
    port: u16,
    server: Server,
    store: Store,
}

impl Application {
    /// Connects to the database, applies migrations and binds the listener; the server starts with
    /// [`Application::run_until_stopped`].
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        if settings.uses_embedded_database() {
            std::fs::create_dir_all(&settings.data_dir)?;
        }
        let store = Store::connect(&settings.database_url()).await?;
        store.migrate().await?;
        Self::build_with_store(settings, store).await
    }

    /// Like [`Application::build`] with an already connected and migrated store.
    pub async fn build_with_store(settings: Settings, store: Store) -> anyhow::Result<Self> {
        let secret = settings.resolve_signing_secret()?;
        let jwt = JwtKeys::new(secret.expose().as_bytes(), settings.token_ttl_seconds)?;
        let listener = TcpListener::bind(settings.listen)?;
        let port = listener.local_addr()?.port();
        let statsd = match &settings.statsd_addr {
            Some(addr) => Some(
                crate::statsd::Statsd::connect(addr, &settings.statsd_prefix)
                    .map_err(|e| anyhow::anyhow!("statsd_addr {addr}: {e}"))?,
            ),
            None => None,
        };
        let blocklists = relaywatch_worker::blocklist::Checker::new(settings.blocklists.clone())?;
        let cipher = relaywatch_store::secrets::SecretCipher::new(secret.expose().as_bytes());
        let webhook_guard = relaywatch_webhooks::Guard::new(&settings.webhooks)?;
        let state = web::Data::new(AppState {
            store: store.clone(),
            jwt,
            metrics: Metrics::new(),
            settings,
            statsd,
            blocklists,
            cipher,
            webhook_guard,
        });
        let spec = crate::openapi::document();
        let server = HttpServer::new(move || {
            let (app, _) = App::new()
                .app_data(state.clone())
                .app_data(web::QueryConfig::default().error_handler(extractors::query))
                .app_data(web::PathConfig::default().error_handler(extractors::path))
                .wrap(actix_web::middleware::from_fn(
                    crate::auth::authenticate_first,
                ))
                .wrap_fn(|req, srv| {
                    let started = Instant::now();
                    let state = req.app_data::<web::Data<AppState>>().cloned();
                    let method = req.method().to_string();
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        if let Some(state) = state {
                            let route = res
                                .request()
                                .match_pattern()
                                .unwrap_or_else(|| "unmatched".to_string());
                            state.metrics.observe(
                                &method,
                                &route,
                                res.status().as_u16(),
                                started.elapsed().as_secs_f64(),
                            );
                        }
                        Ok(res)
                    }
                })
                .into_utoipa_app()
                .openapi(<crate::openapi::ApiDoc as utoipa::OpenApi>::openapi())
                .configure(crate::routes::configure)
                .split_for_parts();
            app.service(SwaggerUi::new("/docs/{_:.*}").url("/openapi.json", spec.clone()))
                .route(
                    "/docs",
                    web::get().to(|| async { web::Redirect::to("/docs/").permanent() }),
                )
                .default_service(web::to(|| async {
                    Err::<actix_web::HttpResponse, _>(ApiError::new(
                        ErrorCode::NotFound,
                        "no such endpoint; see /docs",
                    ))
                }))
        })
        .listen(listener)?
        .shutdown_timeout(30)
        .run();
        Ok(Self {
            port,
            server,
            store,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A handle to stop the server from elsewhere (tests, the CLI's own shutdown).
    pub fn handle(&self) -> ServerHandle {
        self.server.handle()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
