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
    assert!(applied.len() >= 2, "{applied:?}");
    assert_eq!(applied[0], "m20261129_000001_foundation");
    assert_eq!(applied[1], "m20261129_000002_deliveries");
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
        routes_by_sender: false,
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

    let report = relaywatch_worker::housekeeping::run_once(&store, chrono::Utc::now())
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

#[tokio::test]
async fn expiry_drops_whole_days_on_postgres_and_deletes_rows_on_sqlite() {
    use relaywatch_store::deliveries::NewDelivery;
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let created = store
        .create_tenant_with_admin_key("t", &[], &[])
        .await
        .unwrap();
    let tenant = relaywatch_domain::TenantId(created.tenant.id);
    let now = chrono::Utc::now();
    let old_day = now - chrono::Duration::days(40);
    // A day prepared long ago, as the worker would have done then.
    let created_partitions = store
        .ensure_delivery_partitions(old_day.date_naive(), 0)
        .await
        .unwrap();
    let row = |queue: &str, at: chrono::DateTime<chrono::Utc>| NewDelivery {
        tenant,
        id: uuid::Uuid::now_v7(),
        attempt_at: at,
        host: "mx1".into(),
        instance: "postfix".into(),
        queue_id: queue.into(),
        daemon: Some("smtp".into()),
        recipient: Some(format!("{queue}@example.org")),
        orig_recipient: None,
        status: "sent".into(),
        dsn: Some("2.0.0".into()),
        relay: None,
        delay: Some(1.0),
        delays: None,
        reply: None,
        reply_code: None,
        bounce_severity: None,
        bounce_reason: None,
        tag: None,
        message_id: None,
        sender: Some("app@example.com".into()),
        size: None,
        nrcpt: None,
        client: None,
        position: 0,
    };
    let counts = store
        .ingest(vec![row("OLD", old_day), row("NEW", now)], vec![])
        .await
        .unwrap();
    assert_eq!(counts.accepted, 2);
    let report = store.apply_retention_all_tenants(now).await.unwrap();
    if db.backend == "postgres" {
        assert_eq!(created_partitions.len(), 2, "{created_partitions:?}");
        let day = old_day
            .date_naive()
            .format("deliveries_p%Y%m%d")
            .to_string();
        assert!(
            report.dropped_partitions.contains(&day),
            "{:?}",
            report.dropped_partitions
        );
        assert_eq!(
            report.deleted_deliveries, 0,
            "the old row went with its partition"
        );
    } else {
        assert!(created_partitions.is_empty());
        assert_eq!(report.deleted_deliveries, 1);
    }
    let left = store
        .recipient_history(tenant, "OLD@example.org", 10)
        .await
        .unwrap();
    assert!(left.is_empty());
    assert_eq!(
        store
            .recipient_history(tenant, "NEW@example.org", 10)
            .await
            .unwrap()
            .len(),
        1
    );
}
