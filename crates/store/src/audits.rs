//! Audit runs of sending domains (history, queue and latest result) and each tenant's audit schedule.
//!
//! The run table is the queue: requested and scheduled runs are inserted `queued`; a worker claims one by moving it
//! to `running` in a single conditional UPDATE, so only one worker ever runs it. Scheduled runs carry an idempotency
//! key that is unique per domain, so several nodes ticking at once enqueue each run once.

use crate::entities::{audit_run, audit_schedule, sending_domain};
use crate::{Store, StoreError, StoreResult, now};
use chrono::{DateTime, Utc};
use relaywatch_domain::TenantId;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};
use uuid::Uuid;

pub const STATUS_QUEUED: &str = "queued";
pub const STATUS_RUNNING: &str = "running";
pub const STATUS_COMPLETED: &str = "completed";
pub const STATUS_FAILED: &str = "failed";

/// The outcome of a run, as the worker records it.
#[derive(Debug, Clone, Default)]
pub struct AuditOutcome {
    pub score: i32,
    pub grade: String,
    pub errors: i32,
    pub warnings: i32,
    pub infos: i32,
    pub not_tested: i32,
    /// JSON of the report.
    pub report: String,
    /// JSON arrays of findings.
    pub new_findings: String,
    pub resolved_findings: String,
}

/// A tenant's schedule, or the installation default when the tenant has none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSchedule {
    pub cron: String,
    pub enabled: bool,
    pub smtp_checks: bool,
}

impl Store {
    /// The tenant's sending domain with this name.
    pub async fn find_sending_domain_by_name(
        &self,
        tenant: TenantId,
        domain: &str,
    ) -> StoreResult<Option<sending_domain::Model>> {
        Ok(sending_domain::Entity::find()
            .filter(sending_domain::Column::TenantId.eq(tenant.as_uuid()))
            .filter(sending_domain::Column::Domain.eq(domain.to_ascii_lowercase()))
            .one(self.connection())
            .await?)
    }

    fn new_run(
        tenant: TenantId,
        domain: &sending_domain::Model,
        trigger: &str,
        key: Option<String>,
    ) -> audit_run::ActiveModel {
        audit_run::ActiveModel {
            id: Set(Uuid::now_v7()),
            tenant_id: Set(tenant.as_uuid()),
            sending_domain_id: Set(domain.id),
            domain: Set(domain.domain.clone()),
            trigger: Set(trigger.to_string()),
            schedule_key: Set(key),
            status: Set(STATUS_QUEUED.to_string()),
            smtp_checks: Set(None),
            score: Set(None),
            grade: Set(None),
            errors: Set(0),
            warnings: Set(0),
            infos: Set(0),
            not_tested: Set(0),
            report: Set(None),
            new_findings: Set(None),
            resolved_findings: Set(None),
            claimed_by: Set(None),
            failure: Set(None),
            requested_at: Set(now()),
            started_at: Set(None),
            finished_at: Set(None),
        }
    }

    /// Queues a run requested through the API. `smtp_checks` overrides the tenant's schedule for this run.
    pub async fn request_audit(
        &self,
        tenant: TenantId,
        domain: &sending_domain::Model,
        smtp_checks: Option<bool>,
    ) -> StoreResult<audit_run::Model> {
        if domain.tenant_id != tenant.as_uuid() {
            return Err(StoreError::Corrupt("domain of another tenant".into()));
        }
        let mut run = Self::new_run(tenant, domain, "request", None);
        run.smtp_checks = Set(smtp_checks);
        Ok(run.insert(self.connection()).await?)
    }

    /// Queues a scheduled run under an idempotency key. `None` when a run with this key exists already (another
    /// node, or this one earlier, queued it): the caller has nothing to do.
    pub async fn enqueue_scheduled_audit(
        &self,
        tenant: TenantId,
        domain: &sending_domain::Model,
        key: &str,
    ) -> StoreResult<Option<audit_run::Model>> {
        if domain.tenant_id != tenant.as_uuid() {
            return Err(StoreError::Corrupt("domain of another tenant".into()));
        }
        match Self::new_run(tenant, domain, "schedule", Some(key.to_string()))
            .insert(self.connection())
            .await
        {
            Ok(row) => Ok(Some(row)),
            Err(e) => match StoreError::from_insert(e, "this scheduled audit") {
                StoreError::Conflict(_) => Ok(None),
                other => Err(other),
            },
        }
    }

    /// Claims up to `limit` queued runs of any tenant for `worker`, oldest first. Each run is moved from `queued` to
    /// `running` by one conditional UPDATE; a run another worker claimed first is skipped.
    pub async fn claim_queued_audits_all_tenants(
        &self,
        worker: &str,
        limit: u64,
    ) -> StoreResult<Vec<audit_run::Model>> {
        let candidates = audit_run::Entity::find()
            .filter(audit_run::Column::Status.eq(STATUS_QUEUED))
            .order_by_asc(audit_run::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?;
        let mut claimed = Vec::new();
        for run in candidates {
            let started = now();
            let res = audit_run::Entity::update_many()
                .col_expr(audit_run::Column::Status, Expr::value(STATUS_RUNNING))
                .col_expr(audit_run::Column::ClaimedBy, Expr::value(worker))
                .col_expr(audit_run::Column::StartedAt, Expr::value(started))
                .filter(audit_run::Column::Id.eq(run.id))
                .filter(audit_run::Column::Status.eq(STATUS_QUEUED))
                .exec(self.connection())
                .await?;
            if res.rows_affected == 1 {
                claimed.push(audit_run::Model {
                    status: STATUS_RUNNING.into(),
                    claimed_by: Some(worker.into()),
                    started_at: Some(started),
                    ..run
                });
            }
        }
        Ok(claimed)
    }

    /// Records a finished run.
    pub async fn complete_audit(
        &self,
        tenant: TenantId,
        id: Uuid,
        outcome: AuditOutcome,
    ) -> StoreResult<()> {
        self.complete_audit_with_events(tenant, id, outcome, Vec::new())
            .await
    }

    /// Records a finished run and emits `events` (`audit.regressed`, `audit.resolved`) in the same transaction.
    pub async fn complete_audit_with_events(
        &self,
        tenant: TenantId,
        id: Uuid,
        outcome: AuditOutcome,
        events: Vec<crate::events::NewEvent>,
    ) -> StoreResult<()> {
        let txn = self.connection().begin().await?;
        audit_run::Entity::update_many()
            .col_expr(audit_run::Column::Status, Expr::value(STATUS_COMPLETED))
            .col_expr(audit_run::Column::Score, Expr::value(outcome.score))
            .col_expr(audit_run::Column::Grade, Expr::value(outcome.grade))
            .col_expr(audit_run::Column::Errors, Expr::value(outcome.errors))
            .col_expr(audit_run::Column::Warnings, Expr::value(outcome.warnings))
            .col_expr(audit_run::Column::Infos, Expr::value(outcome.infos))
            .col_expr(
                audit_run::Column::NotTested,
                Expr::value(outcome.not_tested),
            )
            .col_expr(audit_run::Column::Report, Expr::value(outcome.report))
            .col_expr(
                audit_run::Column::NewFindings,
                Expr::value(outcome.new_findings),
            )
            .col_expr(
                audit_run::Column::ResolvedFindings,
                Expr::value(outcome.resolved_findings),
            )
            .col_expr(audit_run::Column::FinishedAt, Expr::value(now()))
            .filter(audit_run::Column::TenantId.eq(tenant.as_uuid()))
            .filter(audit_run::Column::Id.eq(id))
            .exec(&txn)
            .await?;
        crate::events::emit_events(&txn, tenant, events).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Records a run Relaywatch itself failed to carry out (never a DNS problem: those are findings).
    pub async fn fail_audit(&self, tenant: TenantId, id: Uuid, reason: &str) -> StoreResult<()> {
        audit_run::Entity::update_many()
            .col_expr(audit_run::Column::Status, Expr::value(STATUS_FAILED))
            .col_expr(audit_run::Column::Failure, Expr::value(reason))
            .col_expr(audit_run::Column::FinishedAt, Expr::value(now()))
            .filter(audit_run::Column::TenantId.eq(tenant.as_uuid()))
            .filter(audit_run::Column::Id.eq(id))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    pub async fn find_audit(
        &self,
        tenant: TenantId,
        domain_id: Uuid,
        id: Uuid,
    ) -> StoreResult<Option<audit_run::Model>> {
        Ok(audit_run::Entity::find()
            .filter(audit_run::Column::TenantId.eq(tenant.as_uuid()))
            .filter(audit_run::Column::SendingDomainId.eq(domain_id))
            .filter(audit_run::Column::Id.eq(id))
            .one(self.connection())
            .await?)
    }

    /// The most recent completed run of a domain.
    pub async fn latest_completed_audit(
        &self,
        tenant: TenantId,
        domain_id: Uuid,
    ) -> StoreResult<Option<audit_run::Model>> {
        Ok(audit_run::Entity::find()
            .filter(audit_run::Column::TenantId.eq(tenant.as_uuid()))
            .filter(audit_run::Column::SendingDomainId.eq(domain_id))
            .filter(audit_run::Column::Status.eq(STATUS_COMPLETED))
            .order_by_desc(audit_run::Column::Id)
            .one(self.connection())
            .await?)
    }

    /// The `n` most recent completed runs of a domain, newest first.
    pub async fn latest_completed_audits(
        &self,
        tenant: TenantId,
        domain_id: Uuid,
        n: u64,
    ) -> StoreResult<Vec<audit_run::Model>> {
        Ok(audit_run::Entity::find()
            .filter(audit_run::Column::TenantId.eq(tenant.as_uuid()))
            .filter(audit_run::Column::SendingDomainId.eq(domain_id))
            .filter(audit_run::Column::Status.eq(STATUS_COMPLETED))
            .order_by_desc(audit_run::Column::Id)
            .limit(n)
            .all(self.connection())
            .await?)
    }

    /// Runs of a domain, newest first; the cursor is the id of the last run of the previous page.
    pub async fn list_audits(
        &self,
        tenant: TenantId,
        domain_id: Uuid,
        before: Option<Uuid>,
        limit: u64,
    ) -> StoreResult<crate::Page<audit_run::Model>> {
        let mut q = audit_run::Entity::find()
            .filter(audit_run::Column::TenantId.eq(tenant.as_uuid()))
            .filter(audit_run::Column::SendingDomainId.eq(domain_id))
            .order_by_desc(audit_run::Column::Id);
        if let Some(before) = before {
            q = q.filter(audit_run::Column::Id.lt(before));
        }
        let rows = q.limit(limit + 1).all(self.connection()).await?;
        Ok(crate::into_page(
            rows,
            crate::PageRequest {
                after: before,
                limit,
            },
            |r| r.id,
        ))
    }

    /// The tenant's audit schedule, if it set one.
    pub async fn audit_schedule(&self, tenant: TenantId) -> StoreResult<Option<AuditSchedule>> {
        Ok(audit_schedule::Entity::find_by_id(tenant.as_uuid())
            .one(self.connection())
            .await?
            .map(|r| AuditSchedule {
                cron: r.cron,
                enabled: r.enabled,
                smtp_checks: r.smtp_checks,
            }))
    }

    pub async fn set_audit_schedule(
        &self,
        tenant: TenantId,
        schedule: &AuditSchedule,
    ) -> StoreResult<()> {
        let row = audit_schedule::ActiveModel {
            tenant_id: Set(tenant.as_uuid()),
            cron: Set(schedule.cron.clone()),
            enabled: Set(schedule.enabled),
            smtp_checks: Set(schedule.smtp_checks),
            updated_at: Set(now()),
        };
        audit_schedule::Entity::insert(row)
            .on_conflict(
                sea_orm::sea_query::OnConflict::column(audit_schedule::Column::TenantId)
                    .update_columns([
                        audit_schedule::Column::Cron,
                        audit_schedule::Column::Enabled,
                        audit_schedule::Column::SmtpChecks,
                        audit_schedule::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Runs left `running` by a worker that died: back to the queue after `stale_after`.
    pub async fn requeue_stale_audits_all_tenants(
        &self,
        started_before: DateTime<Utc>,
    ) -> StoreResult<u64> {
        let res = audit_run::Entity::update_many()
            .col_expr(audit_run::Column::Status, Expr::value(STATUS_QUEUED))
            .col_expr(
                audit_run::Column::ClaimedBy,
                Expr::value(Option::<String>::None),
            )
            .filter(audit_run::Column::Status.eq(STATUS_RUNNING))
            .filter(audit_run::Column::StartedAt.lt(started_before))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected)
    }
}
