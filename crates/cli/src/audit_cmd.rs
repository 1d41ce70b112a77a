//! `relaywatch audit DOMAIN`: the scheduled audit, one-shot, from the console. A readable report on stdout (or
//! JSON with `--json`), and an exit status scripts can test: 0 clean, 1 errors found, 3 no errors but some checks
//! could not be made (a timeout is never a pass).

use clap::Args;
use relaywatch_audit::{Report, Severity};
use relaywatch_worker::audit::{AuditSettings, AuditTarget, Auditor};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
pub struct AuditArgs {
    /// The domain to audit (the one in MAIL FROM and From:)
    pub domain: String,
    /// A sending IP address: checks its reverse DNS and that it passes SPF (repeatable)
    #[arg(long = "ip", value_name = "IP")]
    pub ips: Vec<IpAddr>,
    /// A DKIM selector to check at <selector>._domainkey.<domain> (repeatable)
    #[arg(long = "selector", value_name = "S")]
    pub selectors: Vec<String>,
    /// Nameserver to ask, IP or IP:PORT (repeatable; default: the system's resolvers)
    #[arg(long = "nameserver", value_name = "HOST:PORT")]
    pub nameservers: Vec<String>,
    /// The HELO name the sending servers use, compared with their reverse DNS
    #[arg(long)]
    pub helo: Option<String>,
    /// Messages a day sent from the domain; 5000 or more applies the Gmail/Yahoo bulk-sender rules
    #[arg(long, value_name = "N")]
    pub daily_volume: Option<u64>,
    /// Skip the STARTTLS probes of the MX hosts (outbound port 25 is often blocked)
    #[arg(long)]
    pub no_smtp: bool,
    /// PEM file of an extra CA to trust for MTA-STS and SMTP certificates
    #[arg(long, value_name = "FILE")]
    pub extra_ca: Option<PathBuf>,
    /// Per-query DNS timeout in milliseconds
    #[arg(long, default_value_t = 3000)]
    pub timeout_ms: u64,
    /// Print JSON: {"domain", "findings": [{code, severity, subject, evidence, reference, remediation}], "not_tested", "scorecard"}
    #[arg(long)]
    pub json: bool,
}

fn nameserver(s: &str) -> anyhow::Result<SocketAddr> {
    s.parse::<SocketAddr>()
        .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
        .map_err(|_| anyhow::anyhow!("--nameserver `{s}` is not IP or IP:PORT"))
}

/// Runs the audit and returns the process exit status.
pub async fn run(args: AuditArgs) -> anyhow::Result<i32> {
    let domain = relaywatch_domain::DomainName::parse(&args.domain)
        .map_err(|e| anyhow::anyhow!("`{}` {e}", args.domain))?;
    let mut settings = AuditSettings {
        smtp_checks: !args.no_smtp,
        ..AuditSettings::default()
    };
    settings.dns.nameservers = args
        .nameservers
        .iter()
        .map(|s| nameserver(s))
        .collect::<anyhow::Result<_>>()?;
    settings.dns.timeout = Duration::from_millis(args.timeout_ms);
    if let Some(path) = &args.extra_ca {
        settings.extra_ca_pem = Some(
            std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("--extra-ca {}: {e}", path.display()))?,
        );
    }
    let auditor = Auditor::new(settings)?;
    let report = auditor
        .audit(&AuditTarget {
            domain: domain.as_str().to_string(),
            selectors: args.selectors,
            sending_ips: args.ips,
            helo: args.helo,
            daily_volume: args.daily_volume,
            ..AuditTarget::default()
        })
        .await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", readable(&report));
    }
    Ok(if report.has_errors() {
        1
    } else if !report.not_tested.is_empty() {
        3
    } else {
        0
    })
}

/// The report for people: worst first, each finding with its evidence and what to do.
pub fn readable(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.scorecard;
    out.push_str(&format!(
        "{}: grade {:?}, score {}/100 ({} errors, {} warnings, {} notes{})\n",
        r.domain,
        s.grade,
        s.score,
        r.count(Severity::Error),
        r.count(Severity::Warning),
        r.count(Severity::Info),
        if s.complete {
            String::new()
        } else {
            format!(", {} checks not made", r.not_tested.len())
        }
    ));
    let areas: Vec<String> = s
        .areas
        .iter()
        .map(|a| {
            format!(
                "{} {}",
                a.area,
                serde_json::to_value(a.status)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            )
        })
        .collect();
    out.push_str(&format!("  {}\n", areas.join(" · ")));
    for f in &r.findings {
        out.push_str(&format!(
            "\n{:<7} {}  {}\n",
            f.severity.as_str().to_uppercase(),
            f.code,
            f.title
        ));
        out.push_str(&format!("        subject:  {}\n", f.subject));
        out.push_str(&format!("        evidence: {}\n", f.evidence));
        out.push_str(&format!("        rule:     {}\n", f.reference));
        out.push_str(&format!("        fix:      {}\n", f.remediation));
    }
    for n in &r.not_tested {
        out.push_str(&format!(
            "\nNOT TESTED {} {}: {}\n",
            n.area, n.subject, n.reason
        ));
    }
    out
}
