//! "What share of our mail is accepted, by domain, provider, host and relay, hour by hour?"

use crate::auth::{Auth, Read};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::routes::ReadErrors;
use crate::startup::AppState;
use actix_web::{get, web};
use chrono::{DateTime, Duration, Utc};
use relaywatch_store::deliveries::{GroupBy, StatsBucket};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Most points one series may have: a year of hours, or a week of minutes.
const MAX_POINTS: i64 = 10_080;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Minute,
    Hour,
    Day,
}

impl Interval {
    fn seconds(self) -> i64 {
        match self {
            Interval::Minute => 60,
            Interval::Hour => 3_600,
            Interval::Day => 86_400,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum StatsGroup {
    SenderDomain,
    RecipientDomain,
    /// Mailbox provider (google, microsoft, yahoo, ...) from the relay host or the recipient domain.
    Provider,
    /// The mail host that sent.
    Host,
    /// The receiving server (relay host name).
    Relay,
    BounceClass,
}

impl From<StatsGroup> for GroupBy {
    fn from(g: StatsGroup) -> Self {
        match g {
            StatsGroup::SenderDomain => GroupBy::SenderDomain,
            StatsGroup::RecipientDomain => GroupBy::RecipientDomain,
            StatsGroup::Provider => GroupBy::Provider,
            StatsGroup::Host => GroupBy::Host,
            StatsGroup::Relay => GroupBy::Relay,
            StatsGroup::BounceClass => GroupBy::BounceClass,
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Start (RFC 3339, inclusive); default 24 hours before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339, exclusive); default now.
    pub to: Option<DateTime<Utc>>,
    /// Bucket width (default hour). Buckets are aligned to UTC.
    pub interval: Option<Interval>,
    pub group_by: Option<StatsGroup>,
}

/// Attempts by status, and the acceptance rate.
#[derive(Debug, Clone, Default, Serialize, ToSchema, PartialEq)]
pub struct Counts {
    pub sent: i64,
    pub deferred: i64,
    pub bounced: i64,
    pub expired: i64,
    /// Other statuses (undeliverable, deliverable probes, ...).
    pub other: i64,
    /// sent / (sent + bounced + expired): the share of final outcomes that were accepted. Deferrals are not final
    /// and do not count. Null when there was no final outcome.
    pub acceptance_rate: Option<f64>,
}

impl Counts {
    fn add(&mut self, b: &StatsBucket) {
        self.sent += b.sent;
        self.deferred += b.deferred;
        self.bounced += b.bounced;
        self.expired += b.expired;
        self.other += b.other;
        self.acceptance_rate = acceptance(self.sent, self.bounced, self.expired);
    }
}

fn acceptance(sent: i64, bounced: i64, expired: i64) -> Option<f64> {
    let finals = sent + bounced + expired;
    (finals > 0).then(|| sent as f64 / finals as f64)
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Point {
    /// Start of the bucket.
    pub time: DateTime<Utc>,
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Series {
    /// The group's value (a domain, provider, host ...); null for attempts without one, or when not grouped.
    pub group: Option<String>,
    pub totals: Counts,
    /// One point per bucket from `from` to `to`, zeros included.
    pub points: Vec<Point>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveryStats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub interval: Interval,
    pub group_by: Option<StatsGroup>,
    pub totals: Counts,
    pub series: Vec<Series>,
}

fn window(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - Duration::hours(24));
    if from >= to {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "from must be before to",
        ));
    }
    Ok((from, to))
}

/// Time series of attempts by status and the acceptance rate, optionally per sender domain, recipient domain,
/// provider, host, relay or bounce class.
#[utoipa::path(
    tag = "stats",
    operation_id = "get_delivery_stats",
    params(StatsQuery),
    responses((status = 200, description = "Series of counts", body = DeliveryStats), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/stats/deliveries")]
pub async fn deliveries(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<StatsQuery>,
) -> ApiResult<web::Json<DeliveryStats>> {
    let (from, to) = window(q.from, q.to)?;
    let interval = q.interval.unwrap_or(Interval::Hour);
    let width = interval.seconds();
    let first = from.timestamp().div_euclid(width) * width;
    let points = (to.timestamp() - first + width - 1) / width;
    if points > MAX_POINTS {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            format!(
                "{points} buckets requested; at most {MAX_POINTS}: use a wider interval or a shorter range"
            ),
        ));
    }
    let buckets = state
        .store
        .delivery_stats(auth.tenant, from, to, width, q.group_by.map(GroupBy::from))
        .await?;
    let mut totals = Counts::default();
    let mut groups: BTreeMap<Option<String>, BTreeMap<i64, StatsBucket>> = BTreeMap::new();
    for b in buckets {
        totals.add(&b);
        groups
            .entry(b.group.clone())
            .or_default()
            .insert(b.bucket_unix, b);
    }
    let series = groups
        .into_iter()
        .map(|(group, by_time)| {
            let mut series_totals = Counts::default();
            let points = (0..points)
                .map(|i| {
                    let t = first + i * width;
                    let mut counts = Counts::default();
                    if let Some(b) = by_time.get(&t) {
                        counts.add(b);
                        series_totals.add(b);
                    }
                    Point {
                        time: DateTime::from_timestamp(t, 0).unwrap_or_default(),
                        counts,
                    }
                })
                .collect();
            Series {
                group,
                totals: series_totals,
                points,
            }
        })
        .collect();
    Ok(web::Json(DeliveryStats {
        from,
        to,
        interval,
        group_by: q.group_by,
        totals,
        series,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BounceQuery {
    /// Start (RFC 3339); default 24 hours before `to`.
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339); default now.
    pub to: Option<DateTime<Utc>>,
    /// 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u64>,
}

/// A frequent failure.
#[derive(Debug, Serialize, ToSchema)]
pub struct BounceGroup {
    pub recipient_domain: Option<String>,
    pub dsn: Option<String>,
    /// unknown_recipient, mailbox_full, reputation, rate_limited, ...
    pub bounce_class: Option<String>,
    /// Attempts that were not accepted (bounced, deferred, expired).
    pub count: i64,
    /// One of the replies, as an example.
    pub example_reply: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BounceStats {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub items: Vec<BounceGroup>,
}

/// The most frequent failures by recipient domain, DSN and bounce class, with an example reply.
#[utoipa::path(
    tag = "stats",
    operation_id = "get_bounce_stats",
    params(BounceQuery),
    responses((status = 200, description = "Top failures", body = BounceStats), ReadErrors),
    security(("bearer" = ["read"]))
)]
#[get("/v1/stats/bounces")]
pub async fn bounces(
    auth: Auth<Read>,
    state: web::Data<AppState>,
    q: web::Query<BounceQuery>,
) -> ApiResult<web::Json<BounceStats>> {
    let (from, to) = window(q.from, q.to)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::new(
            ErrorCode::InvalidQuery,
            "limit must be between 1 and 500",
        ));
    }
    let rows = state
        .store
        .bounce_stats(auth.tenant, from, to, limit)
        .await?;
    Ok(web::Json(BounceStats {
        from,
        to,
        items: rows
            .into_iter()
            .map(|r| BounceGroup {
                recipient_domain: r.recipient_domain,
                dsn: r.dsn,
                bounce_class: r.bounce_reason,
                count: r.count,
                example_reply: r.example_reply,
            })
            .collect(),
    }))
}
