//! The `[webhooks]` section of the configuration (and its `RELAYWATCH_WEBHOOKS_*` environment overrides, applied
//! by the API's settings loader).

use ipnet::IpNet;
use serde::{Deserialize, Deserializer};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Networks webhooks may target even though the SSRF guard would refuse them (`127.0.0.0/8`, `10.1.2.0/24`,
    /// a single address). Empty by default: only public addresses.
    #[serde(deserialize_with = "networks")]
    pub allow_networks: Vec<IpNet>,
    /// Nameservers (`IP:port`) that resolve webhook hosts; empty means the system's.
    pub nameservers: Vec<SocketAddr>,
    /// Time one delivery attempt may take, connecting included.
    pub timeout_ms: u64,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: u32,
    /// Wait before the second attempt; each further wait is `retry_factor` times longer, up to
    /// `retry_max_delay_ms`, each with ±20 % jitter. The defaults spread 10 attempts over about a day.
    pub retry_base_ms: u64,
    pub retry_factor: f64,
    pub retry_max_delay_ms: u64,
    /// Deliveries to one endpoint in flight at once, across every worker.
    pub max_in_flight_per_endpoint: u32,
    /// An endpoint is disabled after this many failed attempts in a row ...
    pub disable_after_failures: u32,
    /// ... once it has been failing for at least this long.
    pub disable_after_secs: u64,
    /// `delivery.deferred` events per tenant and minute (per node); more deferrals in a minute are not announced.
    pub deferred_events_per_minute: u32,
    /// A claimed delivery's lease lasts the timeout plus this; a worker that dies mid-delivery releases its
    /// deliveries to others after it.
    pub lease_grace_ms: u64,
    /// Days events and their delivery records are kept.
    pub retention_days: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            allow_networks: Vec::new(),
            nameservers: Vec::new(),
            timeout_ms: 10_000,
            max_attempts: 10,
            retry_base_ms: 30_000,
            retry_factor: 3.0,
            retry_max_delay_ms: 8 * 3600 * 1000,
            max_in_flight_per_endpoint: 4,
            disable_after_failures: 20,
            disable_after_secs: 2 * 86_400,
            deferred_events_per_minute: 60,
            lease_grace_ms: 30_000,
            retention_days: 30,
        }
    }
}

/// A network (`10.0.0.0/8`) or a single address (`192.0.2.1`, `::1`).
pub fn parse_network(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| format!("`{s}` is not an IP network or address"))
}

fn networks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    Vec::<String>::deserialize(d)?
        .iter()
        .map(|s| parse_network(s).map_err(serde::de::Error::custom))
        .collect()
}

impl WebhookSettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }

    /// How long a claimed delivery stays leased.
    pub fn lease(&self) -> Duration {
        self.timeout() + Duration::from_millis(self.lease_grace_ms)
    }

    /// The wait after `attempts_made` failed attempts, with jitter; `None` when the delivery should give up.
    pub fn retry_delay(&self, attempts_made: u32) -> Option<Duration> {
        if attempts_made >= self.max_attempts.max(1) {
            return None;
        }
        let exp = self
            .retry_factor
            .max(1.0)
            .powi(attempts_made.saturating_sub(1).min(64) as i32);
        let base = (self.retry_base_ms as f64 * exp).min(self.retry_max_delay_ms as f64);
        let jitter = 0.8 + 0.4 * rand::random::<f64>();
        Some(Duration::from_millis((base * jitter).max(0.0) as u64))
    }

    /// `RELAYWATCH_WEBHOOKS_*` overrides (`env` is `std::env::var` outside tests).
    pub fn apply_env(&mut self, env: impl Fn(&str) -> Option<String>) -> Result<(), String> {
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
            v.trim()
                .parse()
                .map_err(|_| format!("{name}={v:?} is not a number"))
        }
        if let Some(v) = env("RELAYWATCH_WEBHOOKS_ALLOW_NETWORKS") {
            self.allow_networks = v
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .map(parse_network)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("RELAYWATCH_WEBHOOKS_ALLOW_NETWORKS: {e}"))?;
        }
        if let Some(v) = env("RELAYWATCH_WEBHOOKS_NAMESERVERS") {
            self.nameservers = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse::<SocketAddr>()
                        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                        .map_err(|_| {
                            format!("RELAYWATCH_WEBHOOKS_NAMESERVERS: `{s}` is not IP or IP:port")
                        })
                })
                .collect::<Result<_, _>>()?;
        }
        for (name, field) in [
            ("RELAYWATCH_WEBHOOKS_TIMEOUT_MS", &mut self.timeout_ms),
            ("RELAYWATCH_WEBHOOKS_RETRY_BASE_MS", &mut self.retry_base_ms),
            (
                "RELAYWATCH_WEBHOOKS_RETRY_MAX_DELAY_MS",
                &mut self.retry_max_delay_ms,
            ),
            (
                "RELAYWATCH_WEBHOOKS_DISABLE_AFTER_SECS",
                &mut self.disable_after_secs,
            ),
        ] {
            if let Some(v) = env(name) {
                *field = num(name, &v)?;
            }
        }
        for (name, field) in [
            ("RELAYWATCH_WEBHOOKS_MAX_ATTEMPTS", &mut self.max_attempts),
            (
                "RELAYWATCH_WEBHOOKS_MAX_IN_FLIGHT_PER_ENDPOINT",
                &mut self.max_in_flight_per_endpoint,
            ),
            (
                "RELAYWATCH_WEBHOOKS_DISABLE_AFTER_FAILURES",
                &mut self.disable_after_failures,
            ),
        ] {
            if let Some(v) = env(name) {
                *field = num(name, &v)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_retries_spread_over_about_a_day() {
        let s = WebhookSettings::default();
        let waits: Vec<Duration> = (1..20).map_while(|n| s.retry_delay(n)).collect();
        assert_eq!(waits.len() as u32, s.max_attempts - 1);
        let total: f64 = waits.iter().map(Duration::as_secs_f64).sum();
        // 25 hours before jitter; jitter is ±20 % per wait.
        assert!((20.0 * 3600.0..30.5 * 3600.0).contains(&total), "{total} s");
        assert!(
            waits
                .windows(2)
                .all(|w| w[1].as_secs_f64() > w[0].as_secs_f64() * 0.5)
        );
        assert!(s.retry_delay(s.max_attempts).is_none());
    }

    #[test]
    fn networks_parse_from_toml_and_environment() {
        let s: WebhookSettings =
            toml::from_str(r#"allow_networks = ["127.0.0.0/8", "::1", "10.1.2.3"]"#).unwrap();
        assert_eq!(s.allow_networks.len(), 3);
        assert_eq!(s.allow_networks[1].to_string(), "::1/128");
        let mut e = WebhookSettings::default();
        e.apply_env(|k| {
            (k == "RELAYWATCH_WEBHOOKS_ALLOW_NETWORKS")
                .then(|| "127.0.0.0/8, 192.168.0.0/16".into())
        })
        .unwrap();
        assert_eq!(e.allow_networks.len(), 2);
        let err = WebhookSettings::default()
            .apply_env(|k| (k == "RELAYWATCH_WEBHOOKS_ALLOW_NETWORKS").then(|| "lan".into()))
            .unwrap_err();
        assert!(err.contains("lan"), "{err}");
        assert!(toml::from_str::<WebhookSettings>(r#"allow_networks = ["lan"]"#).is_err());
    }
}
