use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agents")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub host_name: String,
    pub version: Option<String>,
    pub api_key_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub last_seen_at: Option<DateTimeUtc>,
    pub lines_read: i64,
    pub records_shipped: i64,
    pub records_accepted: i64,
    pub spool_bytes: i64,
    #[sea_orm(column_type = "Double", nullable)]
    pub lag_seconds: Option<f64>,
    pub last_error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
