//! `relaywatch`: run the service and administer it from the console.
//!
//! Admin commands print `name=value` lines on stdout (`tenant_id=...`, `api_key=...`) so scripts can read them;
//! everything meant for people goes to stderr.

mod audit_cmd;
mod blocklist_cmd;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use relaywatch_api::{Application, Settings};
use relaywatch_domain::{DomainName, EmailAddress, IpNetwork, Scope, ScopeSet, TenantId};
use relaywatch_store::Store;
use relaywatch_store::api_keys::NewKey;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Relaywatch: email deliverability monitoring for teams that run their own mail relays.
#[derive(Parser)]
#[command(name = "relaywatch", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Settings come from the TOML file, then RELAYWATCH_* environment variables, then these flags.
#[derive(Args)]
struct GlobalArgs {
    /// TOML configuration file [env: RELAYWATCH_CONFIG]
    #[arg(long, global = true, env = "RELAYWATCH_CONFIG")]
    config: Option<PathBuf>,
    /// Directory of the embedded SQLite database and generated secrets (default ./relaywatch-data)
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// postgres://user@host/db to use PostgreSQL instead of the embedded SQLite database
    #[arg(long, global = true)]
    database_url: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API and the background worker in one process (creates the database and an admin on first start)
    Serve {
        /// Address to listen on (default 127.0.0.1:8080)
        #[arg(long)]
        listen: Option<SocketAddr>,
        /// Run the API only, without the background worker
        #[arg(long)]
        no_worker: bool,
    },
    /// Apply pending database migrations and exit
    Migrate,
    /// Manage tenants (the teams whose mail this installation watches)
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API keys
    #[command(subcommand)]
    Key(KeyCommand),
    /// Audit a domain now: SPF, DKIM, DMARC, MX, reverse DNS of --ip, MTA-STS, TLS-RPT, BIMI, SMTP TLS (exit 1 on
    /// errors, 3 when some checks could not be made)
    Audit(audit_cmd::AuditArgs),
    /// DNS blocklists: check an IP address or domain now (exit 1 when listed, 3 when some zones could not be asked)
    #[command(subcommand)]
    Blocklist(blocklist_cmd::BlocklistCommand),
    /// Print the OpenAPI document (regenerate the checked-in copy with `relaywatch openapi > openapi/openapi.json`)
    Openapi,
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant and print its id and an admin API key
    Create {
        /// Name of the tenant, e.g. the team or customer
        name: String,
        /// Sending domain to register (repeatable)
        #[arg(long = "domain", value_name = "DOMAIN")]
        domains: Vec<String>,
        /// Sending IP or CIDR network to register (repeatable)
        #[arg(long = "ip", value_name = "IP")]
        ips: Vec<String>,
    },
    /// List tenants, one `tenant_id=... name=...` line each
    List,
}

#[derive(Subcommand)]
enum KeyCommand {
    /// Create an API key for a tenant and print it
    Create {
        /// Tenant id
        #[arg(long)]
        tenant: TenantId,
        /// Scope to grant: read, write, ingest or admin (repeatable or comma-separated)
        #[arg(long = "scope", required = true, value_delimiter = ',')]
        scopes: Vec<Scope>,
        /// What the key is for
        #[arg(long, default_value = "created with relaywatch key create")]
        name: String,
        /// For an agent on a mail host shared by several tenants: route each delivery to the tenant that registered
        /// its sender domain (needs the ingest scope)
        #[arg(long)]
        shared_host: bool,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RELAYWATCH_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(run(cli))
}

fn settings(global: &GlobalArgs) -> anyhow::Result<Settings> {
    let mut s = Settings::load(global.config.as_deref(), |k| std::env::var(k).ok())?;
    if let Some(dir) = &global.data_dir {
        s.data_dir = dir.clone();
    }
    if let Some(url) = &global.database_url {
        s.database_url = Some(relaywatch_api::settings::Secret::new(url.clone()));
    }
    Ok(s)
}

async fn open_store(s: &Settings) -> anyhow::Result<Store> {
    if s.uses_embedded_database() {
        std::fs::create_dir_all(&s.data_dir)
            .with_context(|| format!("cannot create data directory {}", s.data_dir.display()))?;
    }
    let store = Store::connect(&s.database_url())
        .await
        .context("cannot open the database")?;
    store
        .migrate()
        .await
        .context("cannot apply database migrations")?;
    Ok(store)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let mut s = settings(&cli.global)?;
    match cli.command {
        Command::Serve { listen, no_worker } => {
            if let Some(listen) = listen {
                s.listen = listen;
            }
            if no_worker {
                s.worker_enabled = false;
            }
            serve(s).await
        }
        Command::Migrate => {
            let store = open_store(&s).await?;
            for name in store.applied_migrations().await? {
                println!("migration={name}");
            }
            Ok(())
        }
        Command::Tenant(TenantCommand::Create { name, domains, ips }) => {
            let domains = domains
                .iter()
                .map(|d| DomainName::parse(d).map_err(|e| anyhow::anyhow!("--domain `{d}` {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let ips = ips
                .iter()
                .map(|i| IpNetwork::parse(i).map_err(|e| anyhow::anyhow!("--ip {e}")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let store = open_store(&s).await?;
            let created = store
                .create_tenant_with_admin_key(&name, &domains, &ips)
                .await?;
            println!("tenant_id={}", created.tenant.id);
            println!("api_key={}", created.plaintext_key);
            Ok(())
        }
        Command::Tenant(TenantCommand::List) => {
            let store = open_store(&s).await?;
            let mut page = relaywatch_store::PageRequest::first(500);
            loop {
                let p = store.list_all_tenants(page).await?;
                for t in &p.items {
                    println!("tenant_id={} name={:?}", t.id, t.name);
                }
                match p.next_cursor {
                    Some(c) => page.after = Some(c),
                    None => break Ok(()),
                }
            }
        }
        Command::Key(KeyCommand::Create {
            tenant,
            scopes,
            name,
            shared_host,
        }) => {
            let store = open_store(&s).await?;
            store
                .find_tenant(tenant)
                .await?
                .with_context(|| format!("no tenant with id {tenant}"))?;
            let scopes: ScopeSet = scopes.into_iter().collect();
            if shared_host && !scopes.contains(Scope::Ingest) {
                anyhow::bail!("--shared-host keys are for agents: give them --scope ingest");
            }
            let new = NewKey {
                name: &name,
                scopes,
                installation_admin: false,
                expires_at: None,
                created_by_user: None,
                routes_by_sender: shared_host,
            };
            let (row, key) = store.issue_api_key(tenant, new).await?;
            println!("api_key_id={}", row.id);
            println!("api_key={key}");
            Ok(())
        }
        Command::Audit(args) => {
            let status = audit_cmd::run(args).await?;
            if status != 0 {
                std::process::exit(status);
            }
            Ok(())
        }
        Command::Blocklist(blocklist_cmd::BlocklistCommand::Check(args)) => {
            let status = blocklist_cmd::run(args, s.blocklists.clone()).await?;
            if status != 0 {
                std::process::exit(status);
            }
            Ok(())
        }
        Command::Openapi => {
            print!("{}", relaywatch_api::openapi::document_json());
            Ok(())
        }
    }
}

async fn serve(s: Settings) -> anyhow::Result<()> {
    let store = open_store(&s).await?;
    let admin_email =
        EmailAddress::parse(&s.admin_email).map_err(|e| anyhow::anyhow!("admin_email {e}"))?;
    if let Some(first) = store.bootstrap_installation_admin(&admin_email).await? {
        eprintln!(
            "First start: created the installation admin. The key and password below are shown only once."
        );
        println!("tenant_id={}", first.tenant_id);
        println!("api_key={}", first.api_key);
        println!("admin_email={}", first.admin_email);
        println!("admin_password={}", first.admin_password);
    }
    let worker_enabled = s.worker_enabled;
    let worker_config = relaywatch_worker::WorkerConfig {
        webhooks: s.webhooks.clone(),
        cipher: relaywatch_store::secrets::SecretCipher::new(
            s.resolve_signing_secret()?.expose().as_bytes(),
        ),
        blocklists: s.blocklists.clone(),
        audit: s.audit.clone(),
    };
    let app = Application::build_with_store(s.clone(), store.clone()).await?;
    let base = format!("http://{}:{}", s.listen.ip(), app.port());
    eprintln!(
        "Relaywatch is listening on {base} (API docs: {base}/docs/, OpenAPI: {base}/openapi.json)"
    );
    if s.uses_embedded_database() {
        eprintln!(
            "Embedded database: {}",
            s.data_dir.join("relaywatch.db").display()
        );
    }
    let handle = app.handle();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = worker_enabled.then(|| {
        tokio::spawn(relaywatch_worker::run(store, worker_config, async move {
            let _ = stop_rx.await;
        }))
    });
    // actix stops the server on SIGTERM/SIGINT after draining in-flight requests; then the worker is told to stop.
    let served = app.run_until_stopped().await;
    let _ = stop_tx.send(());
    drop(handle);
    if let Some(worker) = worker {
        worker.await??;
    }
    served?;
    eprintln!("Relaywatch stopped");
    Ok(())
}
