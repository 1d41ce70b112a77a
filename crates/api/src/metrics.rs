//! Prometheus metrics of the API process, served at `GET /metrics`.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
    deliveries: IntCounterVec,
    delivery_delay: HistogramVec,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "relaywatch_http_requests_total",
                "HTTP requests handled, by method, route pattern and status",
            ),
            &["method", "route", "status"],
        )
        .expect("static metric definition");
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "relaywatch_http_request_duration_seconds",
                "HTTP request latency by method and route pattern",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["method", "route"],
        )
        .expect("static metric definition");
        let deliveries = IntCounterVec::new(
            Opts::new(
                "relaywatch_deliveries_total",
                "Delivery attempts stored, by tenant, status and bounce class (replays are not counted)",
            ),
            &["tenant", "status", "bounce_class"],
        )
        .expect("static metric definition");
        let delivery_delay = HistogramVec::new(
            HistogramOpts::new(
                "relaywatch_delivery_delay_seconds",
                "Postfix delay= of stored attempts (queue entry to the attempt's end), by tenant and status",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 14400.0, 86400.0,
            ]),
            &["tenant", "status"],
        )
        .expect("static metric definition");
        for collector in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(latency.clone()),
            Box::new(deliveries.clone()),
            Box::new(delivery_delay.clone()),
        ] {
            registry.register(collector).expect("registered once");
        }
        Self {
            registry,
            requests,
            latency,
            deliveries,
            delivery_delay,
        }
    }

    /// Records one request. `route` is the matched pattern (`/v1/sending-domains/{id}`), never the raw path, so the
    /// number of series stays bounded whatever clients send.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[method, route, &status.to_string()])
            .inc();
        self.latency
            .with_label_values(&[method, route])
            .observe(seconds);
    }

    /// Counts one stored delivery attempt. Tenants are few and statuses and classes are closed sets, so the number of
    /// series stays bounded.
    pub fn observe_delivery(
        &self,
        tenant: &str,
        status: &str,
        bounce_class: Option<&str>,
        delay: Option<f64>,
    ) {
        self.deliveries
            .with_label_values(&[tenant, status, bounce_class.unwrap_or("")])
            .inc();
        if let Some(d) = delay {
            self.delivery_delay
                .with_label_values(&[tenant, status])
                .observe(d);
        }
    }

    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for the text format.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
