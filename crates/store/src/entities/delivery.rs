use sea_orm::entity::prelude::*;

/// One delivery attempt: one Postfix status line with its message's context, denormalised so lookups and statistics
/// read one table.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub attempt_at: DateTimeUtc,
    pub attempt_unix: i64,
    pub tenant_id: Uuid,
    pub message_ref: Uuid,
    pub host: String,
    pub instance: String,
    pub queue_id: String,
    pub daemon: Option<String>,
    pub recipient: Option<String>,
    pub recipient_domain: Option<String>,
    pub orig_recipient: Option<String>,
    pub status: String,
    pub dsn: Option<String>,
    pub relay: Option<String>,
    pub relay_host: Option<String>,
    pub relay_ip: Option<String>,
    #[sea_orm(column_type = "Double", nullable)]
    pub delay: Option<f64>,
    #[sea_orm(column_type = "Double", nullable)]
    pub delay_before_queue: Option<f64>,
    #[sea_orm(column_type = "Double", nullable)]
    pub delay_in_queue: Option<f64>,
    #[sea_orm(column_type = "Double", nullable)]
    pub delay_connection: Option<f64>,
    #[sea_orm(column_type = "Double", nullable)]
    pub delay_transmission: Option<f64>,
    pub reply: Option<String>,
    pub reply_code: Option<i32>,
    pub bounce_severity: Option<String>,
    pub bounce_reason: Option<String>,
    pub provider: Option<String>,
    pub tag: Option<String>,
    pub sender: Option<String>,
    pub sender_domain: Option<String>,
    pub position: i32,
    pub ingested_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
