use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blocklist_listings")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub subject: String,
    pub zone: String,
    #[sea_orm(column_type = "Text")]
    pub codes: String,
    #[sea_orm(column_type = "Text")]
    pub meaning: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub reason: Option<String>,
    pub informational: bool,
    #[sea_orm(column_type = "Text")]
    pub delist_url: Option<String>,
    pub first_seen: DateTimeUtc,
    pub last_seen: DateTimeUtc,
    pub cleared_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
