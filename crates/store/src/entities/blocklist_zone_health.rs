use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blocklist_zone_health")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub zone: String,
    pub healthy: bool,
    #[sea_orm(column_type = "Text")]
    pub reason: Option<String>,
    pub checked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
