//! `relaywatch blocklist check IP|DOMAIN`: every zone's verdict now, from the console. Readable lines on stdout (or
//! JSON with `--json`) and an exit status scripts can test: 0 not listed, 1 listed (not counting informational
//! listings), 3 not listed but some zones could not be asked (a timeout is never "clean").

use clap::{Args, Subcommand};
use relaywatch_api::routes::blocklists::ZoneVerdict;
use relaywatch_audit::blocklist::{Subject, ZoneCode, ZoneSpec};
use relaywatch_worker::blocklist::{BlocklistSettings, Checker, SelfTest, ZoneResult};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

#[derive(Subcommand)]
pub enum BlocklistCommand {
    /// Check an IP address or a domain against the blocklists now
    Check(CheckArgs),
}

#[derive(Args)]
pub struct CheckArgs {
    /// An IPv4 or IPv6 address, or a domain (checked as its registered domain)
    pub subject: String,
    /// Ask this zone instead of the configured set (repeatable); it is queried as the subject's kind
    #[arg(long = "zone", value_name = "ZONE")]
    pub zones: Vec<String>,
    /// Nameserver to ask, IP or IP:PORT (repeatable; default: the configuration's, else the system's)
    #[arg(long = "nameserver", value_name = "HOST:PORT")]
    pub nameservers: Vec<String>,
    /// Per-query timeout in milliseconds
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// Print JSON: {"subject", "results": [{"zone", "state", "codes", "meaning", "reason", ...}]}
    #[arg(long)]
    pub json: bool,
}

fn nameserver(s: &str) -> anyhow::Result<SocketAddr> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| anyhow::anyhow!("--nameserver `{s}` is not IP or IP:PORT"))
}

/// A zone named on the command line: the configured definition when there is one, else a generic one in which any
/// 127.0.0.0/8 answer is a listing except those that conventionally mean a refused query.
fn zone_for(
    name: &str,
    subject: &Subject,
    configured: &[ZoneSpec],
) -> anyhow::Result<(ZoneSpec, SelfTest)> {
    let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
    relaywatch_domain::DomainName::parse(&name)
        .map_err(|e| anyhow::anyhow!("--zone `{name}`: {e}"))?;
    if let Some(known) = configured.iter().find(|z| z.name == name) {
        let mut z = known.clone();
        if !z.lists(subject.kind()) {
            z.kinds.push(subject.kind());
        }
        return Ok((z, SelfTest::Strict));
    }
    let zone = ZoneSpec {
        label: name.clone(),
        name,
        kinds: vec![subject.kind()],
        recommended: false,
        informational: false,
        delist: None,
        refused: [
            "127.0.0.1",
            "127.255.255.252",
            "127.255.255.254",
            "127.255.255.255",
        ]
        .iter()
        .filter_map(|a| a.parse().ok())
        .collect(),
        bitmask: false,
        codes: vec![ZoneCode {
            code: None,
            from: Some(Ipv4Addr::new(127, 0, 0, 2)),
            to: Some(Ipv4Addr::new(127, 255, 255, 251)),
            bit: None,
            meaning: "listed (the zone's codes are not documented here)".to_string(),
            listing: true,
        }],
        test_listed: None,
        test_clean: None,
        dqs: None,
    };
    Ok((zone, SelfTest::ListsEverythingOnly))
}

pub async fn run(args: CheckArgs, base: BlocklistSettings) -> anyhow::Result<i32> {
    let subject = Subject::parse(&args.subject).map_err(|e| anyhow::anyhow!(e))?;
    let mut settings = base;
    if !args.nameservers.is_empty() {
        settings.nameservers = args
            .nameservers
            .iter()
            .map(|s| nameserver(s))
            .collect::<anyhow::Result<_>>()?;
    }
    if let Some(ms) = args.timeout_ms {
        settings.timeout_ms = ms;
    }
    let configured = settings.zones_for(&Default::default());
    let zones: Vec<(ZoneSpec, SelfTest)> = if args.zones.is_empty() {
        configured
            .into_iter()
            .filter(|z| z.lists(subject.kind()))
            .map(|z| (z, SelfTest::Strict))
            .collect()
    } else {
        args.zones
            .iter()
            .map(|n| zone_for(n, &subject, &configured))
            .collect::<anyhow::Result<_>>()?
    };
    let checker = Checker::new(settings)?;
    let health =
        futures::future::join_all(zones.iter().map(|(z, mode)| checker.zone_health(z, *mode)))
            .await;
    let specs: Vec<ZoneSpec> = zones.into_iter().map(|(z, _)| z).collect();
    let results: Vec<ZoneResult> = checker
        .check_all(std::slice::from_ref(&subject), &specs, &health)
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let listed = results
        .iter()
        .filter(|r| {
            matches!(
                r.outcome,
                relaywatch_audit::blocklist::Outcome::Listed {
                    informational: false,
                    ..
                }
            )
        })
        .count();
    let not_tested = results
        .iter()
        .filter(|r| r.outcome.state() == "not_tested")
        .count();
    if args.json {
        // The same verdict objects as `POST /v1/listings/check` answers with.
        let items: Vec<ZoneVerdict> = results.iter().map(ZoneVerdict::from).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "subject": subject.to_string(),
                "results": items,
            }))?
        );
    } else {
        print!("{}", readable(&subject, &results, listed, not_tested));
    }
    Ok(if listed > 0 {
        1
    } else if not_tested > 0 {
        3
    } else {
        0
    })
}

fn readable(subject: &Subject, results: &[ZoneResult], listed: usize, not_tested: usize) -> String {
    let mut out = format!(
        "{subject}: listed on {listed} of {} zones{}\n",
        results.len(),
        if not_tested > 0 {
            format!(" ({not_tested} not tested)")
        } else {
            String::new()
        }
    );
    let mut sorted: Vec<&ZoneResult> = results.iter().collect();
    sorted.sort_by_key(|r| match r.outcome.state() {
        "listed" => 0,
        "not_tested" => 1,
        _ => 2,
    });
    for r in sorted {
        let (codes, meaning, reason) = r.parts();
        let state = match r.outcome.state() {
            "listed" => "LISTED",
            "not_tested" => "NOT TESTED",
            _ => "clean",
        };
        out.push_str(&format!("  {state:<10}  {}", r.zone));
        if !codes.is_empty() {
            out.push_str(&format!("  {}", codes.join(",")));
        }
        if let Some(m) = meaning {
            out.push_str(&format!("  {m}"));
        }
        if let Some(reason) = reason {
            out.push_str(&format!("\n              {reason}"));
        }
        if let Some(url) = &r.delist_url {
            out.push_str(&format!("\n              delist: {url}"));
        }
        out.push('\n');
    }
    out
}
