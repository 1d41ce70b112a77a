//! Blocklist verdicts and their history.
//!
//! Each check of a (subject, zone) updates the tenant's current verdict. A listing opens an episode (first seen,
//! last seen) and a `listed` event; a change of codes is a `codes_changed` event; a clean answer closes the episode
//! (`cleared_at`) with a `cleared` event; listed again opens a new one. "Not tested" changes nothing about an open
//! episode: a timeout is no evidence that a listing ended.

use crate::entities::{
    blocklist_check_request as request, blocklist_event as event, blocklist_listing as listing,
    blocklist_status as status, blocklist_tenant_settings as tsettings,
    blocklist_zone_health as health, sending_domain, sending_ip, tenant,
};
use crate::{Page, PageRequest, Store, StoreResult, into_page};
use chrono::{DateTime, Utc};
use relaywatch_domain::TenantId;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

/// One verdict to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub subject: String,
    /// `ipv4`, `ipv6`, `domain`.
    pub subject_kind: String,
    pub zone: String,
    /// `listed`, `clean`, `not_tested`.
    pub state: String,
    pub codes: Vec<String>,
    pub meaning: Option<String>,
    pub reason: Option<String>,
    pub informational: bool,
    pub delist_url: Option<String>,
}

/// A change of a listing, for alerts and webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub listing_id: Uuid,
    pub subject: String,
    pub zone: String,
    /// `listed`, `codes_changed`, `cleared`.
    pub kind: String,
    pub codes: Vec<String>,
    pub meaning: Option<String>,
    pub informational: bool,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default)]
pub struct StatusFilter {
    /// None: every state.
    pub state: Option<String>,
    pub subject: Option<String>,
    pub zone: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct HistoryFilter {
    pub subject: Option<String>,
    pub zone: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A listing episode with its events, oldest first.
#[derive(Debug, Clone)]
pub struct ListingHistory {
    pub listing: listing::Model,
    pub events: Vec<event::Model>,
}

fn join_codes(codes: &[String]) -> String {
    codes.join(",")
}

pub fn split_codes(codes: &str) -> Vec<String> {
    codes
        .split(',')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect()
}

/// The webhook event of a listing change, keyed by the change's id so a retried write sends it once.
async fn notify(
    txn: &sea_orm::DatabaseTransaction,
    tenant: TenantId,
    event_type: &str,
    e: &event::Model,
    r: &CheckRecord,
) -> StoreResult<()> {
    crate::events::emit_keyed(
        txn,
        tenant,
        event_type,
        &e.id.to_string(),
        serde_json::json!({
            "subject": e.subject,
            "zone": e.zone,
            "listing_id": e.listing_id,
            "codes": split_codes(&e.codes),
            "meaning": e.meaning,
            "reason": r.reason,
            "informational": r.informational,
            "delist_url": r.delist_url,
            "at": e.occurred_at,
        }),
    )
    .await
}

impl Store {
    /// Records one check's verdicts for a tenant in one transaction and returns the listing transitions.
    pub async fn record_blocklist_results(
        &self,
        tenant: TenantId,
        records: &[CheckRecord],
        at: DateTime<Utc>,
    ) -> StoreResult<Vec<Transition>> {
        let txn = self.connection().begin().await?;
        let mut transitions = Vec::new();
        for r in records {
            let current = status::Entity::find()
                .filter(status::Column::TenantId.eq(tenant.as_uuid()))
                .filter(status::Column::Subject.eq(&r.subject))
                .filter(status::Column::Zone.eq(&r.zone))
                .one(&txn)
                .await?;
            let open = listing::Entity::find()
                .filter(listing::Column::TenantId.eq(tenant.as_uuid()))
                .filter(listing::Column::Subject.eq(&r.subject))
                .filter(listing::Column::Zone.eq(&r.zone))
                .filter(listing::Column::ClearedAt.is_null())
                .one(&txn)
                .await?;
            let codes = join_codes(&r.codes);
            let mut listed_since = current.as_ref().and_then(|c| c.listed_since);
            let mut event_of = |listing_id: Uuid, kind: &str| {
                transitions.push(Transition {
                    listing_id,
                    subject: r.subject.clone(),
                    zone: r.zone.clone(),
                    kind: kind.to_string(),
                    codes: r.codes.clone(),
                    meaning: r.meaning.clone(),
                    informational: r.informational,
                    at,
                });
                event::ActiveModel {
                    id: Set(Uuid::now_v7()),
                    tenant_id: Set(tenant.as_uuid()),
                    listing_id: Set(listing_id),
                    subject: Set(r.subject.clone()),
                    zone: Set(r.zone.clone()),
                    kind: Set(kind.to_string()),
                    codes: Set(codes.clone()),
                    meaning: Set(r.meaning.clone()),
                    occurred_at: Set(at),
                }
            };
            match (r.state.as_str(), open) {
                ("listed", Some(open)) => {
                    let changed = open.codes != codes;
                    let id = open.id;
                    let mut row: listing::ActiveModel = open.into();
                    row.last_seen = Set(at);
                    row.reason = Set(r.reason.clone());
                    if changed {
                        row.codes = Set(codes.clone());
                        row.meaning = Set(r.meaning.clone());
                        row.informational = Set(r.informational);
                        event_of(id, "codes_changed").insert(&txn).await?;
                    }
                    row.update(&txn).await?;
                }
                ("listed", None) => {
                    let id = Uuid::now_v7();
                    listing::ActiveModel {
                        id: Set(id),
                        tenant_id: Set(tenant.as_uuid()),
                        subject: Set(r.subject.clone()),
                        zone: Set(r.zone.clone()),
                        codes: Set(codes.clone()),
                        meaning: Set(r.meaning.clone()),
                        reason: Set(r.reason.clone()),
                        informational: Set(r.informational),
                        delist_url: Set(r.delist_url.clone()),
                        first_seen: Set(at),
                        last_seen: Set(at),
                        cleared_at: Set(None),
                    }
                    .insert(&txn)
                    .await?;
                    let e = event_of(id, "listed").insert(&txn).await?;
                    notify(&txn, tenant, "blocklist.listed", &e, r).await?;
                    listed_since = Some(at);
                }
                ("clean", Some(open)) => {
                    let id = open.id;
                    let mut row: listing::ActiveModel = open.into();
                    row.cleared_at = Set(Some(at));
                    row.update(&txn).await?;
                    let e = event_of(id, "cleared").insert(&txn).await?;
                    notify(&txn, tenant, "blocklist.cleared", &e, r).await?;
                    listed_since = None;
                }
                ("clean", None) => listed_since = None,
                // Not tested: the open episode, if any, stays open and unchanged.
                _ => {}
            }
            match current {
                Some(c) => {
                    let mut row: status::ActiveModel = c.into();
                    row.state = Set(r.state.clone());
                    row.reason = Set(r.reason.clone());
                    if r.state != "not_tested" {
                        row.codes = Set(codes.clone());
                        row.meaning = Set(r.meaning.clone());
                        row.informational = Set(r.informational);
                    }
                    row.listed_since = Set(listed_since);
                    row.checked_at = Set(at);
                    row.update(&txn).await?;
                }
                None => {
                    status::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        tenant_id: Set(tenant.as_uuid()),
                        subject: Set(r.subject.clone()),
                        subject_kind: Set(r.subject_kind.clone()),
                        zone: Set(r.zone.clone()),
                        state: Set(r.state.clone()),
                        codes: Set(codes.clone()),
                        meaning: Set(r.meaning.clone()),
                        reason: Set(r.reason.clone()),
                        informational: Set(r.informational),
                        listed_since: Set(listed_since),
                        checked_at: Set(at),
                    }
                    .insert(&txn)
                    .await?;
                }
            }
        }
        txn.commit().await?;
        Ok(transitions)
    }

    /// The tenant's current verdicts, filtered, in the order they were first checked.
    pub async fn list_blocklist_status(
        &self,
        tenant: TenantId,
        filter: &StatusFilter,
        page: PageRequest,
    ) -> StoreResult<Page<status::Model>> {
        let mut q = status::Entity::find().filter(status::Column::TenantId.eq(tenant.as_uuid()));
        if let Some(s) = &filter.state {
            q = q.filter(status::Column::State.eq(s));
        }
        if let Some(s) = &filter.subject {
            q = q.filter(status::Column::Subject.eq(s));
        }
        if let Some(z) = &filter.zone {
            q = q.filter(status::Column::Zone.eq(z));
        }
        if let Some(after) = page.after {
            q = q.filter(status::Column::Id.gt(after));
        }
        let rows = q
            .order_by_asc(status::Column::Id)
            .limit(page.limit + 1)
            .all(self.connection())
            .await?;
        Ok(into_page(rows, page, |r| r.id))
    }

    /// Listing episodes (newest first) with their events.
    pub async fn list_blocklist_history(
        &self,
        tenant: TenantId,
        filter: &HistoryFilter,
        page: PageRequest,
    ) -> StoreResult<Page<ListingHistory>> {
        let mut q = listing::Entity::find().filter(listing::Column::TenantId.eq(tenant.as_uuid()));
        if let Some(s) = &filter.subject {
            q = q.filter(listing::Column::Subject.eq(s));
        }
        if let Some(z) = &filter.zone {
            q = q.filter(listing::Column::Zone.eq(z));
        }
        if let Some(from) = filter.from {
            // Episodes that were open at some point in [from, to].
            q = q.filter(
                sea_orm::Condition::any()
                    .add(listing::Column::ClearedAt.is_null())
                    .add(listing::Column::ClearedAt.gte(from)),
            );
        }
        if let Some(to) = filter.to {
            q = q.filter(listing::Column::FirstSeen.lte(to));
        }
        if let Some(after) = page.after {
            q = q.filter(listing::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(listing::Column::Id)
            .limit(page.limit + 1)
            .all(self.connection())
            .await?;
        let page = into_page(rows, page, |r| r.id);
        let ids: Vec<Uuid> = page.items.iter().map(|l| l.id).collect();
        let events = event::Entity::find()
            .filter(event::Column::TenantId.eq(tenant.as_uuid()))
            .filter(event::Column::ListingId.is_in(ids))
            .order_by_asc(event::Column::Id)
            .all(self.connection())
            .await?;
        Ok(Page {
            next_cursor: page.next_cursor,
            items: page
                .items
                .into_iter()
                .map(|l| ListingHistory {
                    events: events
                        .iter()
                        .filter(|e| e.listing_id == l.id)
                        .cloned()
                        .collect(),
                    listing: l,
                })
                .collect(),
        })
    }

    /// The tenant's zone overrides (JSON of `ZoneOverrides`), if set.
    pub async fn blocklist_overrides(&self, tenant: TenantId) -> StoreResult<Option<String>> {
        Ok(tsettings::Entity::find_by_id(tenant.as_uuid())
            .one(self.connection())
            .await?
            .map(|r| r.overrides))
    }

    pub async fn set_blocklist_overrides(
        &self,
        tenant: TenantId,
        overrides_json: &str,
    ) -> StoreResult<()> {
        let at = crate::now();
        match tsettings::Entity::find_by_id(tenant.as_uuid())
            .one(self.connection())
            .await?
        {
            Some(row) => {
                let mut row: tsettings::ActiveModel = row.into();
                row.overrides = Set(overrides_json.to_string());
                row.updated_at = Set(at);
                row.update(self.connection()).await?;
            }
            None => {
                tsettings::ActiveModel {
                    tenant_id: Set(tenant.as_uuid()),
                    overrides: Set(overrides_json.to_string()),
                    last_swept_at: Set(None),
                    updated_at: Set(at),
                }
                .insert(self.connection())
                .await?;
            }
        }
        Ok(())
    }

    /// Tenants whose last sweep is older than `interval` (or that were never swept). Installation-wide: the worker's.
    pub async fn blocklist_sweeps_due_all_tenants(
        &self,
        interval: chrono::Duration,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<TenantId>> {
        let tenants = tenant::Entity::find().all(self.connection()).await?;
        let swept = tsettings::Entity::find().all(self.connection()).await?;
        Ok(tenants
            .into_iter()
            .filter(|t| {
                swept
                    .iter()
                    .find(|s| s.tenant_id == t.id)
                    .and_then(|s| s.last_swept_at)
                    .is_none_or(|last| now - last >= interval)
            })
            .map(|t| TenantId::from(t.id))
            .collect())
    }

    pub async fn mark_blocklist_swept(
        &self,
        tenant: TenantId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        match tsettings::Entity::find_by_id(tenant.as_uuid())
            .one(self.connection())
            .await?
        {
            Some(row) => {
                let mut row: tsettings::ActiveModel = row.into();
                row.last_swept_at = Set(Some(at));
                row.update(self.connection()).await?;
            }
            None => {
                tsettings::ActiveModel {
                    tenant_id: Set(tenant.as_uuid()),
                    overrides: Set("{}".to_string()),
                    last_swept_at: Set(Some(at)),
                    updated_at: Set(at),
                }
                .insert(self.connection())
                .await?;
            }
        }
        Ok(())
    }

    /// What a tenant's sweep looks at: its sending IPs and networks, and its sending domains.
    pub async fn blocklist_subjects(
        &self,
        tenant: TenantId,
    ) -> StoreResult<(Vec<String>, Vec<String>)> {
        let ips = sending_ip::Entity::find()
            .filter(sending_ip::Column::TenantId.eq(tenant.as_uuid()))
            .all(self.connection())
            .await?
            .into_iter()
            .map(|r| r.network)
            .collect();
        let domains = sending_domain::Entity::find()
            .filter(sending_domain::Column::TenantId.eq(tenant.as_uuid()))
            .all(self.connection())
            .await?
            .into_iter()
            .map(|r| r.domain)
            .collect();
        Ok((ips, domains))
    }

    /// Queues a check of `subject` for the tenant, unless one is already waiting. Returns whether it queued one.
    pub async fn request_blocklist_check(
        &self,
        tenant: TenantId,
        subject: &str,
        reason: &str,
    ) -> StoreResult<bool> {
        let pending = request::Entity::find()
            .filter(request::Column::TenantId.eq(tenant.as_uuid()))
            .filter(request::Column::Subject.eq(subject))
            .filter(request::Column::DoneAt.is_null())
            .one(self.connection())
            .await?;
        if pending.is_some() {
            return Ok(false);
        }
        request::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.as_uuid()),
            subject: Set(subject.to_string()),
            reason: Set(reason.to_string()),
            requested_at: Set(crate::now()),
            done_at: Set(None),
        }
        .insert(self.connection())
        .await?;
        Ok(true)
    }

    /// Claims up to `limit` waiting checks across tenants (the worker's), oldest first, marking them done: a
    /// check that then fails is not retried from here, the next sweep covers it.
    pub async fn take_blocklist_check_requests_all_tenants(
        &self,
        limit: u64,
    ) -> StoreResult<Vec<request::Model>> {
        let rows = request::Entity::find()
            .filter(request::Column::DoneAt.is_null())
            .order_by_asc(request::Column::RequestedAt)
            .limit(limit)
            .all(self.connection())
            .await?;
        let mut taken = Vec::with_capacity(rows.len());
        for r in rows {
            // Claimed by whoever moves it from waiting to done first.
            let res = request::Entity::update_many()
                .col_expr(request::Column::DoneAt, Expr::value(crate::now()))
                .filter(request::Column::Id.eq(r.id))
                .filter(request::Column::DoneAt.is_null())
                .exec(self.connection())
                .await?;
            if res.rows_affected == 1 {
                taken.push(r);
            }
        }
        Ok(taken)
    }

    /// Pending triggered checks for one tenant (for the API and tests).
    pub async fn pending_blocklist_checks(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<request::Model>> {
        Ok(request::Entity::find()
            .filter(request::Column::TenantId.eq(tenant.as_uuid()))
            .filter(request::Column::DoneAt.is_null())
            .order_by_asc(request::Column::RequestedAt)
            .all(self.connection())
            .await?)
    }

    /// Records the zones' self-tests (installation-wide).
    pub async fn record_zone_health(
        &self,
        results: &[(String, bool, Option<String>)],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let txn = self.connection().begin().await?;
        for (zone, healthy, reason) in results {
            let row = health::ActiveModel {
                zone: Set(zone.clone()),
                healthy: Set(*healthy),
                reason: Set(reason.clone()),
                checked_at: Set(at),
            };
            if health::Entity::find_by_id(zone.clone())
                .one(&txn)
                .await?
                .is_some()
            {
                row.update(&txn).await?;
            } else {
                row.insert(&txn).await?;
            }
        }
        txn.commit().await?;
        Ok(())
    }

    pub async fn list_zone_health(&self) -> StoreResult<Vec<health::Model>> {
        Ok(health::Entity::find()
            .order_by_asc(health::Column::Zone)
            .all(self.connection())
            .await?)
    }
}
