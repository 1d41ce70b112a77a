//! The agents that ship logs: when each was last heard from, and how it is doing.

use crate::entities::{agent, sending_domain, unrouted_sender};
use crate::{Page, PageRequest, Store, StoreResult};
use chrono::{DateTime, Utc};
use relaywatch_domain::wire::Heartbeat;
use relaywatch_domain::{DomainName, TenantId};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Set};
use std::collections::HashMap;
use uuid::Uuid;

impl Store {
    async fn find_agent(
        &self,
        tenant: TenantId,
        host_name: &str,
    ) -> StoreResult<Option<agent::Model>> {
        Ok(agent::Entity::find()
            .filter(agent::Column::TenantId.eq(tenant.as_uuid()))
            .filter(agent::Column::HostName.eq(host_name))
            .one(self.connection())
            .await?)
    }

    /// Records that an agent was heard from; `apply` fills in what the message said. Creates the agent on first contact.
    async fn touch_agent(
        &self,
        tenant: TenantId,
        host_name: &str,
        api_key: Option<Uuid>,
        version: Option<&str>,
        apply: impl FnOnce(&mut agent::ActiveModel, Option<&agent::Model>),
    ) -> StoreResult<()> {
        let now = crate::now();
        let existing = self.find_agent(tenant, host_name).await?;
        let mut row = match &existing {
            Some(a) => a.clone().into(),
            None => agent::ActiveModel {
                id: Set(Uuid::now_v7()),
                tenant_id: Set(tenant.as_uuid()),
                host_name: Set(host_name.to_string()),
                created_at: Set(now),
                lines_read: Set(0),
                records_shipped: Set(0),
                records_accepted: Set(0),
                spool_bytes: Set(0),
                lag_seconds: Set(None),
                last_error: Set(None),
                version: Set(None),
                api_key_id: Set(None),
                last_seen_at: Set(None),
            },
        };
        row.last_seen_at = Set(Some(now));
        if api_key.is_some() {
            row.api_key_id = Set(api_key);
        }
        if let Some(v) = version {
            row.version = Set(Some(v.to_string()));
        }
        apply(&mut row, existing.as_ref());
        match existing {
            Some(_) => {
                row.update(self.connection()).await?;
            }
            None => {
                // Two first contacts at once: the other one's row stands, and this contact's figures arrive again
                // with the agent's next heartbeat (they are running totals), so losing the race loses nothing.
                if let Err(e) = row.clone().insert(self.connection()).await
                    && !matches!(
                        e.sql_err(),
                        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
                    )
                {
                    return Err(e.into());
                }
            }
        }
        Ok(())
    }

    pub async fn record_heartbeat(
        &self,
        tenant: TenantId,
        api_key: Option<Uuid>,
        hb: &Heartbeat,
    ) -> StoreResult<()> {
        self.touch_agent(
            tenant,
            &hb.host_name,
            api_key,
            hb.version.as_deref(),
            |row, _| {
                row.lines_read = Set(clamp(hb.lines_read));
                row.records_shipped = Set(clamp(hb.records_shipped));
                row.spool_bytes = Set(clamp(hb.spool_bytes));
                row.lag_seconds = Set(hb.lag_seconds);
                row.last_error = Set(hb.last_error.clone());
            },
        )
        .await
    }

    /// Counts records an agent delivered in a batch.
    pub async fn record_agent_batch(
        &self,
        tenant: TenantId,
        host_name: &str,
        api_key: Option<Uuid>,
        version: Option<&str>,
        accepted: u64,
    ) -> StoreResult<()> {
        self.touch_agent(tenant, host_name, api_key, version, |row, old| {
            let before = old.map(|a| a.records_accepted).unwrap_or(0);
            row.records_accepted = Set(before.saturating_add(accepted as i64));
        })
        .await
    }

    pub async fn list_agents(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<agent::Model>> {
        crate::scoped::list::<agent::Entity>(self.connection(), tenant, page).await
    }

    /// Installation-wide, on purpose: which tenant registered this sender domain or its nearest parent.
    /// When several did, the earliest registration wins.
    pub async fn route_sender_domain_all_tenants(
        &self,
        domain: &str,
    ) -> StoreResult<Option<TenantId>> {
        let Ok(name) = DomainName::parse(domain) else {
            return Ok(None);
        };
        let candidates: Vec<String> = name.self_and_parents().map(str::to_string).collect();
        let rows = sending_domain::Entity::find()
            .filter(sending_domain::Column::Domain.is_in(candidates.clone()))
            .order_by_asc(sending_domain::Column::Id)
            .all(self.connection())
            .await?;
        for candidate in &candidates {
            if let Some(row) = rows.iter().find(|r| &r.domain == candidate) {
                return Ok(Some(TenantId(row.tenant_id)));
            }
        }
        Ok(None)
    }

    /// Counts deliveries whose sender domain no tenant registered, for installation admins to see.
    pub async fn record_unrouted(
        &self,
        counts: &HashMap<String, u64>,
        host: &str,
    ) -> StoreResult<()> {
        let now = crate::now();
        for (domain, n) in counts {
            let row = unrouted_sender::ActiveModel {
                sender_domain: Set(domain.clone()),
                deliveries: Set(*n as i64),
                last_host: Set(host.to_string()),
                first_seen_at: Set(now),
                last_seen_at: Set(now),
            };
            unrouted_sender::Entity::insert(row)
                .on_conflict(
                    OnConflict::column(unrouted_sender::Column::SenderDomain)
                        .value(
                            unrouted_sender::Column::Deliveries,
                            Expr::col((
                                unrouted_sender::Entity,
                                unrouted_sender::Column::Deliveries,
                            ))
                            .add(*n as i64),
                        )
                        .update_columns([
                            unrouted_sender::Column::LastHost,
                            unrouted_sender::Column::LastSeenAt,
                        ])
                        .to_owned(),
                )
                .exec_without_returning(self.connection())
                .await?;
        }
        Ok(())
    }

    pub async fn list_unrouted_all_tenants(&self) -> StoreResult<Vec<unrouted_sender::Model>> {
        Ok(unrouted_sender::Entity::find()
            .order_by_desc(unrouted_sender::Column::Deliveries)
            .all(self.connection())
            .await?)
    }
}

/// Counters arrive as u64 and are stored as BIGINT.
fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Silence: an agent not heard from in this long is reported as silent.
pub fn is_silent(last_seen: Option<DateTime<Utc>>, now: DateTime<Utc>, after_secs: i64) -> bool {
    last_seen.is_none_or(|t| (now - t).num_seconds() > after_secs)
}
