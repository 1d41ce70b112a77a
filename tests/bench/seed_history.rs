//! Fills a PostgreSQL database with a large, realistic delivery history for one tenant, for lookup benchmarks.
//!
//! ```text
//! seed-history --database-url postgres://postgres@127.0.0.1:5432/rw_seed [--attempts 10000000] [--days 28]
//!              [--keys-out /tmp/seed-keys.json] [--jobs 2]
//! ```
//!
//! The database is created if it does not exist and migrated by the project's own migrations; a tenant and an admin
//! key are made through the store, and the daily partitions of `deliveries` for every seeded day are created the
//! way the worker creates them (`ensure_delivery_partitions`), so every row lands in its day within retention, not
//! in the default partition. The rows themselves are generated inside PostgreSQL (`generate_series`, one
//! `INSERT ... SELECT` per day into `messages` and `deliveries`), several days at a time (`--jobs`).
//!
//! The mix, decided by hashes of the message number (so a run is reproducible): about 1.2 recipients per message
//! (88% one, 9% two, 3% five), 93% delivered at the first attempt, 3% after 1-2 deferrals, 2.5% bounced, 0.7%
//! deferred then bounced, 0.4% expired after 3 deferrals, the rest still deferred; recipients from big providers
//! (gmail, outlook, hotmail, yahoo, icloud, gmx, web.de) and 50,000 small domains, about 3 M distinct addresses in the
//! tail, 2,000 medium addresses (~100 messages each), 20 heavy ones (~2,500 each) and two very heavy local ones
//! (`app@lab.test`, which receives the bounce notices, ~25,000 messages; `postmaster@lab.test`, ~12,000); 70% of
//! messages carry a tag, 20 campaign tags with tens of thousands of messages each and 50,000 smaller ones; a unique
//! Message-ID per message. Message refs are md5-derived UUIDs, not the ingest path's `message_ref` hash: these
//! rows are only ever read.
//!
//! Prints what it made (`name=value` lines: tenant, key, counts, seconds) and writes sample keys to `--keys-out`:
//! tags, recipients and Message-IDs drawn from random rows (so weighted by volume), and the heavy recipients.

use sea_orm::sqlx::{self, Row};
use std::time::Instant;

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

/// Attempts per message in the mix above (measured; used only to size the message count).
const ATTEMPTS_PER_MESSAGE: f64 = 1.26;

const SEED_DAY: &str = r#"
WITH m AS MATERIALIZED (
    SELECT i,
           md5('m:' || i)::uuid AS id,
           $2::timestamptz + (i - $3) * $4 * interval '1 microsecond' AS t0,
           hashint8extended(i, 1) & 9223372036854775807 AS h1,
           hashint8extended(i, 2) & 9223372036854775807 AS h2,
           hashint8extended(i, 3) & 9223372036854775807 AS h3
    FROM generate_series($3::bigint, $5::bigint - 1) AS i
), msg AS MATERIALIZED (
    SELECT m.*,
           'mx' || (h1 % 4 + 1) || '.lab.test' AS host,
           upper(substr(md5('q:' || i), 1, 11)) AS queue_id,
           substr(md5('mid:' || i), 1, 12) || '.' || i || '@app.lab.test' AS message_id,
           CASE WHEN h2 % 100 < 30 THEN NULL
                WHEN h2 % 100 < 40 THEN md5('tag:' || (h3 % 20))
                ELSE md5('tag:' || (20 + h3 % 50000)) END AS tag,
           CASE WHEN (h1 / 7) % 100 < 80 THEN 'app@lab.test'
                WHEN (h1 / 7) % 100 < 92 THEN 'noreply@lab.test'
                ELSE 'news' || ((h1 / 700) % 50) || '@lab.test' END AS sender,
           CASE WHEN (h1 / 13) % 100 < 88 THEN 1 WHEN (h1 / 13) % 100 < 97 THEN 2 ELSE 5 END AS nrcpt,
           2000 + (h2 / 100) % 80000 AS size
    FROM m
), ins_messages AS (
    INSERT INTO messages (id, tenant_id, host, instance, queue_id, message_id, tag, sender, sender_domain, size,
                          nrcpt, client, first_seen_at, last_seen_at, finished_at)
    SELECT id, $1, host, 'postfix', queue_id, message_id, tag, sender, 'lab.test', size, nrcpt,
           'app.lab.test[10.0.' || (h1 % 4) || '.' || (h2 % 250 + 1) || ']', t0, t0 + interval '90 minutes',
           t0 + interval '90 minutes'
    FROM msg
), rcpt AS (
    SELECT msg.*, r,
           hashint8extended(i * 8 + r, 7) & 9223372036854775807 AS hr,
           hashint8extended(i * 8 + r, 8) & 9223372036854775807 AS hq,
           hashint8extended(i * 8 + r, 9) & 9223372036854775807 AS hd
    FROM msg CROSS JOIN LATERAL generate_series(1, msg.nrcpt) AS r
), addr AS MATERIALIZED (
    SELECT rcpt.*,
           CASE WHEN hd % 100000 < 300 THEN 'app@lab.test'
                WHEN hd % 100000 < 450 THEN 'postmaster@lab.test'
                WHEN hd % 100000 < 1000 THEN 'ops' || ((hd / 100000) % 20) || '@bigcorp.example'
                WHEN hd % 100000 < 3000 THEN 'team' || ((hd / 100000) % 2000) || '@partners.example'
                ELSE (ARRAY['james','mary','john','patricia','robert','jennifer','michael','linda','wei','fatima',
                            'olga','kenji','amara','lucas','sofia','noah','emma','ravi','chen','ana'])[1 + (hd / 100000) % 20]
                     || '.' || ((hd / 2000000) % 150000) || '@' ||
                     CASE WHEN (hq / 1000) % 1000 < 300 THEN 'gmail.com'
                          WHEN (hq / 1000) % 1000 < 380 THEN 'outlook.com'
                          WHEN (hq / 1000) % 1000 < 450 THEN 'hotmail.com'
                          WHEN (hq / 1000) % 1000 < 550 THEN 'yahoo.com'
                          WHEN (hq / 1000) % 1000 < 600 THEN 'icloud.com'
                          WHEN (hq / 1000) % 1000 < 620 THEN 'gmx.de'
                          WHEN (hq / 1000) % 1000 < 640 THEN 'web.de'
                          ELSE 'mail' || ((hq / 1000000) % 50000) || '.example' END
           END AS recipient,
           CASE WHEN hr % 1000 < 930 THEN 1
                WHEN hr % 1000 < 960 THEN 2 + (hq % 2)
                WHEN hr % 1000 < 985 THEN 1
                WHEN hr % 1000 < 992 THEN 2
                WHEN hr % 1000 < 996 THEN 4
                ELSE 1 + (hq % 2) END AS natt,
           CASE WHEN hr % 1000 < 960 THEN 'sent'
                WHEN hr % 1000 < 992 THEN 'bounced'
                WHEN hr % 1000 < 996 THEN 'expired'
                ELSE 'deferred' END AS final
    FROM rcpt
), dom AS (
    SELECT addr.*, split_part(recipient, '@', 2) AS rdomain FROM addr
), relay AS MATERIALIZED (
    SELECT dom.*,
           CASE rdomain
                WHEN 'gmail.com' THEN 'gmail-smtp-in.l.google.com'
                WHEN 'outlook.com' THEN 'outlook-com.olc.protection.outlook.com'
                WHEN 'hotmail.com' THEN 'hotmail-com.olc.protection.outlook.com'
                WHEN 'yahoo.com' THEN 'mta5.am0.yahoodns.net'
                WHEN 'icloud.com' THEN 'mx01.mail.icloud.com'
                WHEN 'gmx.de' THEN 'mx00.emig.gmx.net'
                WHEN 'web.de' THEN 'mx-ha03.web.de'
                WHEN 'lab.test' THEN NULL
                ELSE 'mx.' || rdomain END AS rhost,
           CASE rdomain
                WHEN 'gmail.com' THEN 'google' WHEN 'outlook.com' THEN 'microsoft'
                WHEN 'hotmail.com' THEN 'microsoft' WHEN 'yahoo.com' THEN 'yahoo' WHEN 'icloud.com' THEN 'apple'
                WHEN 'gmx.de' THEN 'gmx' WHEN 'web.de' THEN 'gmx' ELSE NULL END AS provider,
           '198.51.' || (hq % 200) || '.' || (hq / 200 % 250 + 1) AS rip
    FROM dom
)
INSERT INTO deliveries (id, attempt_at, attempt_unix, tenant_id, message_ref, host, instance, queue_id, daemon,
                        recipient, recipient_domain, orig_recipient, status, dsn, relay, relay_host, relay_ip, delay,
                        delay_before_queue, delay_in_queue, delay_connection, delay_transmission, reply, reply_code,
                        bounce_severity, bounce_reason, provider, tag, sender, sender_domain, position, ingested_at)
SELECT md5('d:' || i || ':' || r || ':' || a)::uuid, at, floor(extract(epoch FROM at))::bigint, $1, id, host,
       'postfix', queue_id,
       CASE WHEN st = 'expired' THEN 'qmgr' WHEN rhost IS NULL THEN 'local' ELSE 'smtp' END,
       recipient, rdomain, NULL, st,
       CASE st WHEN 'sent' THEN '2.0.0' WHEN 'deferred' THEN '4.7.0' WHEN 'bounced' THEN '5.1.1' ELSE NULL END,
       CASE WHEN st = 'expired' THEN NULL WHEN rhost IS NULL THEN 'local' ELSE rhost || '[' || rip || ']:25' END,
       CASE WHEN st = 'expired' THEN NULL ELSE rhost END,
       CASE WHEN st = 'expired' OR rhost IS NULL THEN NULL ELSE rip END,
       dly, 0.01, dly - 0.5, 0.1, 0.39,
       CASE st WHEN 'sent' THEN '250 2.0.0 OK ' || (hq % 1000000000) || ' - gsmtp'
               WHEN 'deferred' THEN '421 4.7.0 Try again later, closing connection.'
               WHEN 'bounced' THEN '550 5.1.1 The email account that you tried to reach does not exist.'
               ELSE NULL END,
       CASE st WHEN 'sent' THEN 250 WHEN 'deferred' THEN 421 WHEN 'bounced' THEN 550 ELSE NULL END,
       CASE st WHEN 'sent' THEN NULL WHEN 'bounced' THEN 'hard' ELSE 'soft' END,
       CASE st WHEN 'sent' THEN NULL WHEN 'bounced' THEN 'unknown_recipient' WHEN 'expired' THEN 'expired'
               ELSE 'rate_limited' END,
       provider, tag, sender, 'lab.test', (i % 100000)::int * 8 + r + a, at + interval '2 seconds'
FROM relay
CROSS JOIN LATERAL generate_series(1, natt) AS a
CROSS JOIN LATERAL (
    SELECT CASE WHEN a < natt THEN 'deferred' ELSE final END AS st,
           t0 + (0.3 + (hq % 2000) / 1000.0) * interval '1 second' + (power(2, a - 1) - 1) * interval '10 minutes' AS at,
           0.8 + (hq % 2000) / 1000.0 + (power(2, a - 1) - 1) * 600 AS dly
) AS att
"#;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let url = arg(&args, "--database-url").expect("--database-url postgres://...");
    let attempts: u64 = arg(&args, "--attempts")
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000_000);
    let days: i64 = arg(&args, "--days")
        .and_then(|v| v.parse().ok())
        .unwrap_or(28);
    let jobs: usize = arg(&args, "--jobs")
        .and_then(|v| v.parse().ok())
        .unwrap_or(2);
    let keys_out = arg(&args, "--keys-out").unwrap_or_else(|| "/tmp/seed-keys.json".into());
    assert!(
        url.starts_with("postgres"),
        "seed-history fills PostgreSQL (partitions, generate_series)"
    );
    assert!(
        (1..=29).contains(&days),
        "--days 1..29 (default retention is 30 days)"
    );
    let started = Instant::now();

    // Create the database when missing, through the server's maintenance database.
    let (server, dbname) = url.rsplit_once('/').expect("URL with a database name");
    let dbname = dbname.split('?').next().unwrap_or(dbname).to_string();
    {
        let admin = sqlx::PgPool::connect(&format!("{server}/postgres"))
            .await
            .expect("connect to the server");
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(&dbname)
                .fetch_one(&admin)
                .await
                .unwrap();
        if !exists {
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{dbname}\"")))
                .execute(&admin)
                .await
                .expect("create database");
            eprintln!("created database {dbname}");
        }
    }
    let store = relaywatch_store::Store::connect(&url)
        .await
        .expect("connect");
    store.migrate().await.expect("migrate");
    let created = store
        .create_tenant_with_admin_key("seeded history", &[], &[])
        .await
        .expect("tenant");
    let tenant = created.tenant.id;

    // The span ends 6 hours ago, so retries (up to 70 minutes later) are never in the future.
    let now = chrono::Utc::now();
    let end = now - chrono::Duration::hours(6);
    let start = end - chrono::Duration::days(days);
    let mut day = start.date_naive();
    while day <= now.date_naive() {
        store
            .ensure_delivery_partitions(day, 1, 1)
            .await
            .expect("partitions");
        day += chrono::Duration::days(1);
    }
    let messages = (attempts as f64 / ATTEMPTS_PER_MESSAGE).round() as i64;
    let per_day = (messages + days - 1) / days;
    let micros_per_message = 86_400_000_000f64 / per_day as f64;
    eprintln!("seeding {messages} messages ({per_day} a day for {days} days) for tenant {tenant}");

    let pool = store.connection().get_postgres_connection_pool().clone();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..jobs.max(1) {
        let (pool, next) = (pool.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = pool.acquire().await.unwrap();
            // Bulk load: nothing is lost that a rerun would not make again.
            sqlx::query("SET synchronous_commit = off")
                .execute(&mut *conn)
                .await
                .unwrap();
            let mut rows = 0u64;
            loop {
                let d = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if d >= days {
                    break;
                }
                let lo = d * per_day;
                let hi = ((d + 1) * per_day).min(messages);
                let day_start = start + chrono::Duration::days(d);
                let t = Instant::now();
                let res = sqlx::query(SEED_DAY)
                    .bind(tenant)
                    .bind(day_start)
                    .bind(lo)
                    .bind(micros_per_message)
                    .bind(hi)
                    .execute(&mut *conn)
                    .await
                    .expect("seed a day");
                rows += res.rows_affected();
                eprintln!(
                    "day {d}: {} messages, {} attempts in {:.1} s",
                    hi - lo,
                    res.rows_affected(),
                    t.elapsed().as_secs_f64()
                );
            }
            rows
        }));
    }
    let mut stored = 0u64;
    for t in tasks {
        stored += t.await.unwrap();
    }
    let load_secs = started.elapsed().as_secs_f64();
    eprintln!("loaded in {load_secs:.1} s; VACUUM ANALYZE");
    for table in ["messages", "deliveries"] {
        sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM (ANALYZE) {table}")))
            .execute(&pool)
            .await
            .expect("vacuum");
    }
    let in_default: i64 = sqlx::query_scalar("SELECT count(*) FROM deliveries_default")
        .fetch_one(&pool)
        .await
        .unwrap();

    // Sample keys, drawn from random rows (so weighted by volume, like real questions).
    async fn sample(pool: &sqlx::PgPool, sql: &'static str) -> Vec<String> {
        sqlx::query(sql)
            .fetch_all(pool)
            .await
            .expect("sample")
            .iter()
            .map(|r| r.get::<String, _>(0))
            .collect()
    }
    let tags = sample(
        &pool,
        "SELECT tag FROM messages TABLESAMPLE SYSTEM (0.2) WHERE tag IS NOT NULL ORDER BY random() LIMIT 2000",
    )
    .await;
    let message_ids = sample(
        &pool,
        "SELECT message_id FROM messages TABLESAMPLE SYSTEM (0.2) WHERE message_id IS NOT NULL ORDER BY random() LIMIT 2000",
    )
    .await;
    let recipients = sample(
        &pool,
        "SELECT recipient FROM deliveries TABLESAMPLE SYSTEM (0.2) WHERE recipient IS NOT NULL ORDER BY random() LIMIT 2000",
    )
    .await;
    let heavy: Vec<(String, i64)> = sqlx::query(
        "SELECT recipient, count(DISTINCT message_ref) FROM deliveries \
         WHERE recipient = 'app@lab.test' OR recipient = 'postmaster@lab.test' OR recipient LIKE 'ops%@bigcorp.example' \
         GROUP BY recipient ORDER BY 2 DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let heavy_tags: Vec<(String, i64)> = sqlx::query(
        "SELECT tag, count(*) FROM messages WHERE tag IN (SELECT md5('tag:' || g) FROM generate_series(0, 19) g) \
         GROUP BY tag ORDER BY 2 DESC",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect();
    let counts = sqlx::query(
        "SELECT (SELECT count(*) FROM messages), (SELECT count(DISTINCT recipient) FROM deliveries TABLESAMPLE SYSTEM (1)), \
         pg_size_pretty(pg_database_size(current_database()))",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let keys = serde_json::json!({
        "tenant_id": tenant,
        "api_key": created.plaintext_key,
        "tags": tags,
        "message_ids": message_ids,
        "recipients": recipients,
        "heavy_recipients": heavy.iter().map(|(r, _)| r).collect::<Vec<_>>(),
        "heavy_tags": heavy_tags.iter().map(|(t, _)| t).collect::<Vec<_>>(),
    });
    std::fs::write(&keys_out, serde_json::to_vec_pretty(&keys).unwrap()).expect("keys file");

    println!("tenant_id={tenant}");
    println!("api_key={}", created.plaintext_key);
    println!("messages={}", counts.get::<i64, _>(0));
    println!("attempts={stored}");
    println!("attempts_in_default_partition={in_default}");
    println!(
        "distinct_recipients_in_1pct_sample={}",
        counts.get::<i64, _>(1)
    );
    println!("database_size={}", counts.get::<String, _>(2));
    println!("load_seconds={load_secs:.1}");
    println!("total_seconds={:.1}", started.elapsed().as_secs_f64());
    println!("keys_file={keys_out}");
    for (r, n) in &heavy {
        println!("heavy_recipient={r} messages={n}");
    }
    for (t, n) in heavy_tags.iter().take(3) {
        println!("heavy_tag={t} messages={n}");
    }
    println!("sample_tag={}", tags.first().cloned().unwrap_or_default());
    println!(
        "sample_message_id={}",
        message_ids.first().cloned().unwrap_or_default()
    );
    println!(
        "sample_recipient={}",
        recipients.first().cloned().unwrap_or_default()
    );
}
