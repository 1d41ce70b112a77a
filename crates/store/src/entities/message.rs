use sea_orm::entity::prelude::*;

/// A message as Postfix queued it: one per (mail host, instance, queue id, Message-ID).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub host: String,
    pub instance: String,
    pub queue_id: String,
    pub message_id: Option<String>,
    pub tag: Option<String>,
    pub sender: Option<String>,
    pub sender_domain: Option<String>,
    pub size: Option<i64>,
    pub nrcpt: Option<i32>,
    pub client: Option<String>,
    pub first_seen_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
