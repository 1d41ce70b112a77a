//! Migrations and housekeeping on the real database of the run (SQLite, or PostgreSQL when configured).

use relaywatch_domain::{Scope, ScopeSet};
use relaywatch_store::api_keys::NewKey;
use relaywatch_tests::TestDatabase;

#[tokio::test]
async fn migrations_apply_from_empty_and_are_idempotent() {
    let db = TestDatabase::create().await;
    let store = relaywatch_store::Store::connect(&db.url).await.unwrap();
    assert!(
        !store.is_ready().await.unwrap(),
        "an empty {} database is not ready",
        db.backend
    );
    store.migrate().await.unwrap();
    assert!(store.is_ready().await.unwrap());
    store.migrate().await.unwrap();
    let applied = store.applied_migrations().await.unwrap();
    assert_eq!(applied, vec!["m20261129_000001_foundation".to_string()]);
    // The tables work: a tenant with a domain round-trips, and deleting the tenant removes what it owns.
    let d = relaywatch_domain::DomainName::parse("example.com").unwrap();
    let created = store
        .create_tenant_with_admin_key("t", &[d.clone(), d], &[])
        .await
        .unwrap();
    let tenant = relaywatch_domain::TenantId(created.tenant.id);
    let page = store
        .list_sending_domains(tenant, relaywatch_store::PageRequest::first(10))
        .await
        .unwrap();
    assert_eq!(
        page.items.len(),
        1,
        "duplicate domains in the input are registered once"
    );
    assert!(store.delete_tenant(tenant).await.unwrap());
    let page = store
        .list_sending_domains(tenant, relaywatch_store::PageRequest::first(10))
        .await
        .unwrap();
    assert!(
        page.items.is_empty(),
        "foreign keys cascade on {}",
        db.backend
    );
}

#[tokio::test]
async fn housekeeping_prunes_only_long_retired_keys() {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let created = store
        .create_tenant_with_admin_key("t", &[], &[])
        .await
        .unwrap();
    let tenant = relaywatch_domain::TenantId(created.tenant.id);
    let key = |name| NewKey {
        name,
        scopes: [Scope::Read].into_iter().collect::<ScopeSet>(),
        installation_admin: false,
        expires_at: None,
        created_by_user: None,
    };
    let (recent, _) = store
        .issue_api_key(tenant, key("recently revoked"))
        .await
        .unwrap();
    store
        .revoke_api_key(tenant, relaywatch_domain::ApiKeyId(recent.id))
        .await
        .unwrap();
    let mut old = key("expired long ago");
    old.expires_at = Some(chrono::Utc::now() - chrono::Duration::days(40));
    store.issue_api_key(tenant, old).await.unwrap();

    let report = relaywatch_worker::housekeeping::run_once(&store)
        .await
        .unwrap();
    assert_eq!(report.pruned_api_keys, 1);
    let names: Vec<String> = store
        .list_api_keys(tenant, relaywatch_store::PageRequest::first(10))
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert!(names.contains(&"recently revoked".to_string()));
    assert!(names.contains(&"tenant admin".to_string()));
    assert!(!names.contains(&"expired long ago".to_string()));
}
