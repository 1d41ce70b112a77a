use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub sending_domain_id: Uuid,
    pub domain: String,
    pub trigger: String,
    pub schedule_key: Option<String>,
    pub status: String,
    pub smtp_checks: Option<bool>,
    pub score: Option<i32>,
    pub grade: Option<String>,
    pub errors: i32,
    pub warnings: i32,
    pub infos: i32,
    pub not_tested: i32,
    pub report: Option<String>,
    pub new_findings: Option<String>,
    pub resolved_findings: Option<String>,
    pub claimed_by: Option<String>,
    pub failure: Option<String>,
    pub requested_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
