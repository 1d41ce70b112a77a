//! The three queries every tenant-owned table needs, written once: find one, list a page, delete one — each with the
//! tenant in its `WHERE` clause, so a repository cannot forget it.

use crate::{Page, PageRequest, StoreResult, into_page};
use relaywatch_domain::TenantId;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

/// A tenant-owned table: its `tenant_id` and `id` columns, and how to read a row's id.
pub(crate) trait TenantOwned: EntityTrait {
    fn tenant_column() -> Self::Column;
    fn id_column() -> Self::Column;
    fn id_of(row: &Self::Model) -> Uuid;
}

pub(crate) async fn find<E: TenantOwned>(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> StoreResult<Option<E::Model>> {
    Ok(E::find()
        .filter(E::tenant_column().eq(tenant.as_uuid()))
        .filter(E::id_column().eq(id))
        .one(db)
        .await?)
}

pub(crate) async fn list<E: TenantOwned>(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    page: PageRequest,
) -> StoreResult<Page<E::Model>> {
    let mut q = E::find()
        .filter(E::tenant_column().eq(tenant.as_uuid()))
        .order_by_asc(E::id_column());
    if let Some(after) = page.after {
        q = q.filter(E::id_column().gt(after));
    }
    let rows = q.limit(page.limit + 1).all(db).await?;
    Ok(into_page(rows, page, E::id_of))
}

pub(crate) async fn delete<E: TenantOwned>(
    db: &impl ConnectionTrait,
    tenant: TenantId,
    id: Uuid,
) -> StoreResult<bool> {
    let res = E::delete_many()
        .filter(E::tenant_column().eq(tenant.as_uuid()))
        .filter(E::id_column().eq(id))
        .exec(db)
        .await?;
    Ok(res.rows_affected > 0)
}

macro_rules! tenant_owned {
    ($($module:ident),*) => {$(
        impl TenantOwned for crate::entities::$module::Entity {
            fn tenant_column() -> Self::Column {
                crate::entities::$module::Column::TenantId
            }
            fn id_column() -> Self::Column {
                crate::entities::$module::Column::Id
            }
            fn id_of(row: &Self::Model) -> Uuid {
                row.id
            }
        }
    )*};
}

tenant_owned!(
    api_key,
    user,
    sending_domain,
    sending_ip,
    agent,
    webhook_endpoint,
    alert_rule
);
