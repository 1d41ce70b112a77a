//! Recipient domains' providers learned from their MX records (installation-wide cache) and the backfill of
//! deliveries whose provider was unknown when they were stored.

use crate::entities::{delivery, recipient_domain_provider as cache};
use crate::{Store, StoreResult};
use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, Set, sea_query::Expr,
};
use std::collections::HashMap;

/// A real answer is trusted this long; MX changes are rare.
pub const FRESH_FOR_DAYS: i64 = 7;
/// A failed lookup is tried again after this long.
pub const RETRY_FAILED_AFTER_MINUTES: i64 = 60;

impl Store {
    /// Recipient domains of deliveries since `since` whose provider is unknown and whose MX is not freshly known.
    /// Installation-wide: the worker's.
    pub async fn domains_needing_mx_all_tenants(
        &self,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
        limit: usize,
    ) -> StoreResult<Vec<String>> {
        let candidates: Vec<String> = delivery::Entity::find()
            .select_only()
            .column(delivery::Column::RecipientDomain)
            .distinct()
            .filter(delivery::Column::Provider.is_null())
            .filter(delivery::Column::RecipientDomain.is_not_null())
            .filter(delivery::Column::AttemptAt.gte(since))
            .limit(limit as u64 * 4)
            .into_tuple::<Option<String>>()
            .all(self.connection())
            .await?
            .into_iter()
            .flatten()
            .collect();
        let known = self.cached_providers(&candidates).await?;
        Ok(candidates
            .into_iter()
            .filter(|d| match known.get(d) {
                None => true,
                Some(row) if row.failed => {
                    now - row.resolved_at >= Duration::minutes(RETRY_FAILED_AFTER_MINUTES)
                }
                Some(row) => now - row.resolved_at >= Duration::days(FRESH_FOR_DAYS),
            })
            .take(limit)
            .collect())
    }

    async fn cached_providers(
        &self,
        domains: &[String],
    ) -> StoreResult<HashMap<String, cache::Model>> {
        let mut out = HashMap::new();
        for chunk in domains.chunks(500) {
            for row in cache::Entity::find()
                .filter(cache::Column::Domain.is_in(chunk.iter().cloned()))
                .all(self.connection())
                .await?
            {
                out.insert(row.domain.clone(), row);
            }
        }
        Ok(out)
    }

    /// The providers known from MX for these domains (those with one).
    pub async fn mx_providers(&self, domains: &[String]) -> StoreResult<HashMap<String, String>> {
        Ok(self
            .cached_providers(domains)
            .await?
            .into_iter()
            .filter_map(|(d, row)| Some((d, row.provider?)))
            .collect())
    }

    /// Stores what a domain's MX says: its hosts (most preferred first) and the provider they name, if any.
    pub async fn record_mx_provider(
        &self,
        domain: &str,
        provider: Option<&str>,
        mx_hosts: &[String],
        failed: bool,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let row = cache::ActiveModel {
            domain: Set(domain.to_string()),
            provider: Set(provider.map(str::to_string)),
            mx_hosts: Set(mx_hosts.join(" ")),
            failed: Set(failed),
            resolved_at: Set(at),
        };
        if cache::Entity::find_by_id(domain.to_string())
            .one(self.connection())
            .await?
            .is_some()
        {
            row.update(self.connection()).await?;
        } else {
            row.insert(self.connection()).await?;
        }
        Ok(())
    }

    /// Sets the provider of the deliveries to `domain` since `since` that have none. Installation-wide: the MX of a
    /// domain is the same fact for every tenant. Returns how many attempts changed.
    pub async fn apply_mx_provider_all_tenants(
        &self,
        domain: &str,
        provider: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<u64> {
        Ok(delivery::Entity::update_many()
            .col_expr(delivery::Column::Provider, Expr::value(provider))
            .filter(delivery::Column::Provider.is_null())
            .filter(delivery::Column::RecipientDomain.eq(domain))
            .filter(delivery::Column::AttemptAt.gte(since))
            .exec(self.connection())
            .await?
            .rows_affected)
    }
}
