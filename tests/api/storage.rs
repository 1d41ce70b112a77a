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
    let (_db, store, tenant) = migrated_with_tenant().await;
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
    let (db, store, tenant) = migrated_with_tenant().await;
    let now = chrono::Utc::now();
    let old_day = now - chrono::Duration::days(40);
    // A day prepared long ago, as the worker would have done then.
    let created_partitions = store
        .ensure_delivery_partitions(old_day.date_naive(), 1, 0)
        .await
        .unwrap();
    let row = |queue: &str, at| delivery_row(tenant, queue, at);
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
    assert_eq!(attempts_to(&store, tenant, "OLD@example.org").await, 0);
    assert_eq!(attempts_to(&store, tenant, "NEW@example.org").await, 1);
}

#[tokio::test]
async fn housekeeping_prepares_days_back_to_retention_so_a_backfill_lands_in_its_day() {
    use sea_orm::ConnectionTrait;
    let (db, store, tenant) = migrated_with_tenant().await;
    let now = chrono::Utc::now();
    relaywatch_worker::housekeeping::run_once(&store, now)
        .await
        .unwrap();
    // An agent backfilling three weeks of logs, inside the default 30-day retention.
    let old = now - chrono::Duration::days(21);
    let counts = store
        .ingest(vec![delivery_row(tenant, "BACKFILL", old)], vec![])
        .await
        .unwrap();
    assert_eq!(counts.accepted, 1);
    if db.backend != "postgres" {
        return; // SQLite has no partitions; its expiry deletes rows.
    }
    let row = store
        .connection()
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT tableoid::regclass::text AS part FROM deliveries WHERE queue_id = 'BACKFILL'",
        ))
        .await
        .unwrap()
        .expect("the row is stored");
    let part: String = row.try_get("", "part").unwrap();
    assert_eq!(
        part,
        old.date_naive().format("deliveries_p%Y%m%d").to_string(),
        "not in the default partition, so it expires with its day"
    );
    // The oldest prepared day is still inside retention: the next pass drops nothing.
    let again = relaywatch_worker::housekeeping::run_once(&store, now)
        .await
        .unwrap();
    assert!(
        again.dropped_partitions.is_empty(),
        "{:?}",
        again.dropped_partitions
    );
}

/// A sent attempt to `<queue>@example.org`.
fn delivery_row(
    tenant: relaywatch_domain::TenantId,
    queue: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> relaywatch_store::deliveries::NewDelivery {
    relaywatch_store::deliveries::NewDelivery {
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
    }
}

#[tokio::test]
async fn sustained_ingest_on_sqlite_checkpoints_and_truncates_the_wal() {
    let (db, store, tenant) = migrated_with_tenant().await;
    if db.backend != "sqlite" {
        assert_eq!(store.checkpoint_wal().await.unwrap(), None);
        return;
    }
    let wal = std::path::PathBuf::from(format!(
        "{}-wal",
        db.url
            .trim_start_matches("sqlite://")
            .trim_end_matches("?mode=rwc")
    ));
    store.set_wal_checkpoint_rows(100);
    let now = chrono::Utc::now();
    for batch in 0..6 {
        let rows = (0..40)
            .map(|n| delivery_row(tenant, &format!("Q{batch}X{n}"), now))
            .collect();
        assert_eq!(store.ingest(rows, vec![]).await.unwrap().accepted, 40);
    }
    // 240 attempts and as many messages: the background checkpoint ran at least once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while store.wal_checkpoints_completed() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(store.wal_checkpoints_completed() >= 1);
    // With no reader holding an old snapshot, a checkpoint copies every frame and leaves an empty file (once a
    // background checkpoint started by the last batches has finished: of two at once, one is told busy).
    let checkpoint = || async {
        store
            .checkpoint_wal()
            .await
            .unwrap()
            .expect("SQLite reports")
    };
    let mut c = checkpoint().await;
    while c.busy && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        c = checkpoint().await;
    }
    assert!(!c.busy, "{c:?}");
    assert_eq!(c.wal_frames, c.checkpointed_frames, "{c:?}");
    assert_eq!(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0), 0);
    // Nothing was lost on the way.
    assert_eq!(attempts_to(&store, tenant, "Q5X39@example.org").await, 1);
}

#[tokio::test]
async fn message_ids_stored_with_angle_brackets_are_made_bare_by_the_migration() {
    use relaywatch_migrations::{Migrator, MigratorTrait};
    use sea_orm::{ActiveModelTrait, Set};
    let db = TestDatabase::create().await;
    let store = relaywatch_store::Store::connect(&db.url).await.unwrap();
    // The schema as it was before migration 000010, with a message ingested then.
    Migrator::up(store.connection(), Some(9)).await.unwrap();
    let created = store
        .create_tenant_with_admin_key("t", &[], &[])
        .await
        .unwrap();
    let tenant = relaywatch_domain::TenantId(created.tenant.id);
    for mid in ["<old.1@app.example>", "<malformed@app.example"] {
        let now = chrono::Utc::now();
        relaywatch_store::entities::message::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            tenant_id: Set(tenant.as_uuid()),
            host: Set("mx1".into()),
            instance: Set("postfix".into()),
            queue_id: Set("Q1".into()),
            message_id: Set(Some(mid.into())),
            first_seen_at: Set(now),
            last_seen_at: Set(now),
            ..Default::default()
        }
        .insert(store.connection())
        .await
        .unwrap();
    }
    store.migrate().await.unwrap();
    let filter = |mid: &str| relaywatch_store::deliveries::MessageFilter {
        message_id: Some(mid.to_string()),
        ..Default::default()
    };
    let (found, _) = store
        .list_messages(tenant, &filter("old.1@app.example"), None, 10)
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(
        found[0].message.message_id.as_deref(),
        Some("old.1@app.example")
    );
    // Without a matching pair of brackets the id is kept as written.
    let (kept, _) = store
        .list_messages(tenant, &filter("<malformed@app.example"), None, 10)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1);
}

#[tokio::test]
async fn on_sqlite_messages_by_id_use_the_primary_key_with_or_without_statistics() {
    use sea_orm::{ConnectionTrait, QueryTrait};
    let (db, store, tenant) = migrated_with_tenant().await;
    if db.backend != "sqlite" {
        return; // PostgreSQL's autovacuum keeps its own statistics.
    }
    let now = chrono::Utc::now();
    let rows = (0..300)
        .map(|n| delivery_row(tenant, &format!("QS{n}"), now))
        .collect();
    store.ingest(rows, vec![]).await.unwrap();
    // The statement the store runs for the recipient walk's message fetch, as SQLite plans it.
    let plan = || async {
        let ids = (0..3).map(|_| uuid::Uuid::now_v7()).collect();
        let query =
            relaywatch_store::Store::messages_by_id_query(sea_orm::DbBackend::Sqlite, tenant, ids)
                .build(sea_orm::DbBackend::Sqlite);
        let explain = sea_orm::Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", query.sql),
            ..query
        };
        let rows = store.connection().query_all_raw(explain).await.unwrap();
        rows.iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect::<Vec<_>>()
            .join("; ")
    };
    // Without the unary plus SQLite walked the tenant's index here, before and after ANALYZE.
    let before = plan().await;
    assert!(before.contains("sqlite_autoindex_messages_1"), "{before}");
    relaywatch_worker::housekeeping::run_once(&store, now)
        .await
        .unwrap();
    let stats: Vec<_> = store
        .connection()
        .query_all_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Sqlite,
            "SELECT idx FROM sqlite_stat1 WHERE tbl = 'messages'",
        ))
        .await
        .unwrap();
    assert!(!stats.is_empty(), "housekeeping analyzed the tables");
    let after = plan().await;
    assert!(after.contains("sqlite_autoindex_messages_1"), "{after}");
}

/// A fresh, migrated database of the run's backend with one tenant.
async fn migrated_with_tenant() -> (
    TestDatabase,
    relaywatch_store::Store,
    relaywatch_domain::TenantId,
) {
    let db = TestDatabase::create().await;
    let store = db.store().await;
    let created = store
        .create_tenant_with_admin_key("t", &[], &[])
        .await
        .unwrap();
    let tenant = relaywatch_domain::TenantId(created.tenant.id);
    (db, store, tenant)
}

/// How many attempts to `address` the store lists.
async fn attempts_to(
    store: &relaywatch_store::Store,
    tenant: relaywatch_domain::TenantId,
    address: &str,
) -> usize {
    store
        .recipient_history(tenant, address, 10)
        .await
        .unwrap()
        .len()
}
