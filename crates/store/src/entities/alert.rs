use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub rule_id: Option<Uuid>,
    pub kind: String,
    pub scope_key: String,
    /// Set while open, NULL once resolved; unique per tenant.
    pub open_key: Option<String>,
    pub status: String,
    pub summary: String,
    #[sea_orm(column_type = "Double", nullable)]
    pub value: Option<f64>,
    #[sea_orm(column_type = "Double", nullable)]
    pub threshold: Option<f64>,
    /// JSON object.
    pub details: String,
    pub opened_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub resolved_at: Option<DateTimeUtc>,
    pub resolution: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
