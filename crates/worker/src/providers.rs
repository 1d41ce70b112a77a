//! Recipient domains' providers from their MX records: each minute, the recipient domains of recent deliveries whose
//! provider neither the relay host nor the well-known domain list told are looked up (MX, most preferred first),
//! the answer is cached installation-wide, and those deliveries get their provider. A domain hosted at Google
//! Workspace or Microsoft 365 then counts with its provider even when every attempt failed before reaching a relay.

use crate::dns;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use hickory_resolver::TokioResolver;
use relaywatch_audit::{Answer, Query, Rdata, RecordType};
use relaywatch_store::Store;

/// Deliveries this recent are looked at and backfilled.
pub const LOOKBACK_DAYS: i64 = 2;
/// Domains looked up per tick, and at once.
pub const DOMAINS_PER_TICK: usize = 200;
const IN_FLIGHT: usize = 16;

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub domains: usize,
    pub with_provider: usize,
    pub failed: usize,
    pub deliveries_updated: u64,
}

/// Looks up the MX of the domains that need it and backfills their deliveries. Idempotent.
pub async fn resolve_pending(
    store: &Store,
    resolver: &TokioResolver,
    now: DateTime<Utc>,
) -> Result<Report, relaywatch_store::StoreError> {
    let since = now - Duration::days(LOOKBACK_DAYS);
    let domains = store
        .domains_needing_mx_all_tenants(since, now, DOMAINS_PER_TICK)
        .await?;
    let answers: Vec<(String, Answer)> = futures::stream::iter(domains)
        .map(|domain| async move {
            let answer = dns::resolve(
                resolver,
                &Query {
                    name: domain.clone(),
                    rtype: RecordType::Mx,
                },
            )
            .await;
            (domain, answer)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    let mut report = Report {
        domains: answers.len(),
        ..Report::default()
    };
    for (domain, answer) in answers {
        let (hosts, failed) = match &answer {
            Answer::Records(records) => {
                let mut mx: Vec<(u16, String)> = records
                    .iter()
                    .filter_map(|r| match r {
                        Rdata::Mx {
                            preference,
                            exchange,
                        } => Some((
                            *preference,
                            exchange.trim_end_matches('.').to_ascii_lowercase(),
                        )),
                        _ => None,
                    })
                    .collect();
                mx.sort();
                (mx.into_iter().map(|(_, h)| h).collect::<Vec<_>>(), false)
            }
            Answer::NxDomain => (Vec::new(), false),
            Answer::Failed(_) => (Vec::new(), true),
        };
        let provider =
            relaywatch_domain::provider::provider_of_mx(hosts.iter().map(String::as_str));
        store
            .record_mx_provider(&domain, provider, &hosts, failed, now)
            .await?;
        report.failed += usize::from(failed);
        if let Some(p) = provider {
            report.with_provider += 1;
            report.deliveries_updated += store
                .apply_mx_provider_all_tenants(&domain, p, since)
                .await?;
        }
    }
    Ok(report)
}

/// The cron worker's state.
#[derive(Clone)]
pub struct MxProviders {
    pub store: Store,
    pub resolver: TokioResolver,
}

pub async fn on_tick(
    _tick: apalis_cron::Tick,
    ctx: apalis::prelude::Data<MxProviders>,
) -> Result<(), apalis::prelude::BoxDynError> {
    let report = resolve_pending(&ctx.store, &ctx.resolver, Utc::now()).await?;
    if report.domains > 0 {
        tracing::info!(
            domains = report.domains,
            with_provider = report.with_provider,
            failed = report.failed,
            deliveries_updated = report.deliveries_updated,
            "recipient domains' providers from MX"
        );
    }
    Ok(())
}
