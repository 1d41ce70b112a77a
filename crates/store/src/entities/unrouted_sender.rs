use sea_orm::entity::prelude::*;

/// A sender domain seen by a shared-host agent that no tenant registered. Installation-level, not tenant data.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "unrouted_senders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sender_domain: String,
    pub deliveries: i64,
    pub last_host: String,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
