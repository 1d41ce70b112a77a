//! DKIM selectors learned from mail: the (domain, selector) pairs opendkim logged signing with, per tenant, with when
//! each was first and last seen. Audits add them to the registered selectors; the API shows them on the domain.

use crate::entities::observed_dkim_selector;
use crate::{Store, StoreResult};
use chrono::{DateTime, Utc};
use relaywatch_domain::{DkimSelector, DomainName, TenantId};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};

/// One pair seen in a batch, with the earliest and latest attempt that showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenSelector {
    pub domain: DomainName,
    pub selector: DkimSelector,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
}

/// `SET col = the earlier (or later) of the stored and the new value`, in SQL both SQLite and PostgreSQL accept (a
/// backfill of old logs moves `first_seen_at` back without moving `last_seen_at`). SQLite stores sea-orm timestamps
/// as text of one format, whose order is the time order.
fn keep(column: &str, op: &str) -> Expr {
    Expr::cust(format!(
        "CASE WHEN excluded.{column} {op} observed_dkim_selectors.{column} \
         THEN excluded.{column} ELSE observed_dkim_selectors.{column} END"
    ))
}

impl Store {
    /// Records pairs seen in mail (idempotent: a batch sent twice changes nothing).
    pub async fn record_observed_selectors(
        &self,
        tenant: TenantId,
        seen: &[SeenSelector],
    ) -> StoreResult<()> {
        for s in seen {
            let row = observed_dkim_selector::ActiveModel {
                id: Set(uuid::Uuid::now_v7()),
                tenant_id: Set(tenant.as_uuid()),
                domain: Set(s.domain.as_str().to_string()),
                selector: Set(s.selector.as_str().to_string()),
                first_seen_at: Set(s.first_seen),
                last_seen_at: Set(s.last_seen),
            };
            observed_dkim_selector::Entity::insert(row)
                .on_conflict(
                    OnConflict::columns([
                        observed_dkim_selector::Column::TenantId,
                        observed_dkim_selector::Column::Domain,
                        observed_dkim_selector::Column::Selector,
                    ])
                    .value(
                        observed_dkim_selector::Column::FirstSeenAt,
                        keep("first_seen_at", "<"),
                    )
                    .value(
                        observed_dkim_selector::Column::LastSeenAt,
                        keep("last_seen_at", ">"),
                    )
                    .to_owned(),
                )
                .exec_without_returning(self.connection())
                .await?;
        }
        Ok(())
    }

    /// The selectors seen signing for any of `domains` (lower case) since `since`, by domain then selector.
    pub async fn observed_selectors(
        &self,
        tenant: TenantId,
        domains: &[String],
        since: Option<DateTime<Utc>>,
    ) -> StoreResult<Vec<observed_dkim_selector::Model>> {
        if domains.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = observed_dkim_selector::Entity::find()
            .filter(observed_dkim_selector::Column::TenantId.eq(tenant.as_uuid()))
            .filter(observed_dkim_selector::Column::Domain.is_in(domains.iter().cloned()));
        if let Some(since) = since {
            q = q.filter(observed_dkim_selector::Column::LastSeenAt.gte(since));
        }
        Ok(q.order_by_asc(observed_dkim_selector::Column::Domain)
            .order_by_asc(observed_dkim_selector::Column::Selector)
            .all(self.connection())
            .await?)
    }
}
