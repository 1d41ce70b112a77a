use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "alert_rules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub name: String,
    pub kind: String,
    pub enabled: bool,
    #[sea_orm(column_type = "Double", nullable)]
    pub threshold: Option<f64>,
    pub window_minutes: Option<i32>,
    pub cooldown_minutes: i32,
    pub min_volume: Option<i32>,
    pub scope: Option<String>,
    pub scope_value: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
