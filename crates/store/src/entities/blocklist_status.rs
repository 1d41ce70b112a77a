use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "blocklist_status")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub subject: String,
    pub subject_kind: String,
    pub zone: String,
    pub state: String,
    #[sea_orm(column_type = "Text")]
    pub codes: String,
    #[sea_orm(column_type = "Text")]
    pub meaning: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub reason: Option<String>,
    pub informational: bool,
    pub listed_since: Option<DateTimeUtc>,
    pub checked_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
