//! People who log in. Emails are unique across the installation because login is by email alone.

use crate::entities::user;
use crate::{Page, PageRequest, Store, StoreError, StoreResult, now, secrets};
use relaywatch_domain::{EmailAddress, Role, TenantId, UserId};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};

impl Store {
    pub async fn create_user(
        &self,
        tenant: TenantId,
        email: &EmailAddress,
        password: &str,
        role: Role,
        installation_admin: bool,
    ) -> StoreResult<user::Model> {
        let hash = secrets::hash_password(password).map_err(StoreError::Corrupt)?;
        let row = user::ActiveModel {
            id: Set(UserId::new().as_uuid()),
            tenant_id: Set(tenant.as_uuid()),
            email: Set(email.as_str().to_ascii_lowercase()),
            password_hash: Set(hash),
            role: Set(role.as_str().to_string()),
            installation_admin: Set(installation_admin),
            created_at: Set(now()),
            last_login_at: Set(None),
            disabled_at: Set(None),
        };
        row.insert(self.connection())
            .await
            .map_err(|e| StoreError::from_insert(e, "a user with this email"))
    }

    /// Checks an email and password. Returns the user only when the password matches and the user is enabled; takes the
    /// same time whether or not the email exists.
    pub async fn authenticate_user(
        &self,
        email: &str,
        password: &str,
    ) -> StoreResult<Option<user::Model>> {
        let found = user::Entity::find()
            .filter(user::Column::Email.eq(email.trim().to_ascii_lowercase()))
            .one(self.connection())
            .await?;
        let Some(found) = found else {
            secrets::verify_password(password, secrets::dummy_password_hash());
            return Ok(None);
        };
        if !secrets::verify_password(password, &found.password_hash) || found.disabled_at.is_some()
        {
            return Ok(None);
        }
        let mut row: user::ActiveModel = found.into();
        row.last_login_at = Set(Some(now()));
        Ok(Some(row.update(self.connection()).await?))
    }

    pub async fn find_user(
        &self,
        tenant: TenantId,
        user: UserId,
    ) -> StoreResult<Option<user::Model>> {
        crate::scoped::find::<user::Entity>(self.connection(), tenant, user.as_uuid()).await
    }

    pub async fn list_users(
        &self,
        tenant: TenantId,
        page: PageRequest,
    ) -> StoreResult<Page<user::Model>> {
        crate::scoped::list::<user::Entity>(self.connection(), tenant, page).await
    }

    pub async fn delete_user(&self, tenant: TenantId, user: UserId) -> StoreResult<bool> {
        crate::scoped::delete::<user::Entity>(self.connection(), tenant, user.as_uuid()).await
    }
}
