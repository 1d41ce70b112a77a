//! TLS of the domain's inbound SMTP (RFC 3207, RFC 8996, RFC 8461 §4.2): what the worker's STARTTLS probe of each
//! MX host saw, handed in as [`Probe`]s.

use crate::finding::{Finding, NotTested, Rule, Severity};
use crate::spf::rule;
use serde::{Deserialize, Serialize};

rule!(
    NO_STARTTLS,
    "smtp_tls.no_starttls",
    Error,
    "The MX host does not offer STARTTLS",
    "RFC 3207; RFC 8461 §4.2",
    "Enable STARTTLS on the server (Postfix: smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_security_level = may)."
);
rule!(
    CERTIFICATE,
    "smtp_tls.certificate_invalid",
    Warning,
    "The MX host's certificate is not valid for its name",
    "RFC 8461 §4.2; RFC 7672",
    "Install a certificate from a public CA that names the MX host, with the full chain."
);
rule!(
    OLD_TLS,
    "smtp_tls.old_tls_version",
    Error,
    "The MX host offers only TLS older than 1.2",
    "RFC 8996; RFC 9325 §3.1.1",
    "Enable TLS 1.2 and 1.3 on the server (Postfix: smtpd_tls_protocols = >=TLSv1.2)."
);
rule!(
    HANDSHAKE,
    "smtp_tls.handshake_failed",
    Error,
    "The TLS handshake with the MX host fails",
    "RFC 3207",
    "Check the server's TLS configuration (certificate and key match, ciphers offered) with the evidence's error."
);

pub const RULES: &[&Rule] = &[&NO_STARTTLS, &CERTIFICATE, &OLD_TLS, &HANDSHAKE];

/// What one STARTTLS probe of an MX host saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub host: String,
    /// The address probed (`192.0.2.25:25`), when the host has several: each is probed, and each finding says which.
    #[serde(default)]
    pub address: Option<String>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// TLS was negotiated; the certificate verdict was recorded without aborting the handshake.
    Tls {
        version: String,
        certificate_error: Option<String>,
    },
    /// The EHLO reply did not offer STARTTLS.
    NoStartTls {
        ehlo: String,
    },
    /// The server only speaks protocol versions Relaywatch refuses (below TLS 1.2).
    OldVersion(String),
    HandshakeFailed(String),
    /// No connection or no greeting (port 25 is often filtered): not tested.
    Unreachable(String),
}

/// `mta_sts_mode` raises certificate problems to errors: a sender enforcing the policy will not deliver.
pub fn check(
    probes: &[Probe],
    mta_sts_mode: Option<&str>,
    findings: &mut Vec<Finding>,
    not_tested: &mut Vec<NotTested>,
) {
    for p in probes {
        let at = p
            .address
            .as_deref()
            .map(|a| format!(" [at {a}]"))
            .unwrap_or_default();
        match &p.outcome {
            Outcome::Tls {
                certificate_error: None,
                ..
            } => {}
            Outcome::Tls {
                version,
                certificate_error: Some(why),
            } => {
                let f = Finding::new(&CERTIFICATE, &p.host, format!("{why} ({version}){at}"));
                findings.push(if mta_sts_mode == Some("enforce") {
                    f.with_severity(Severity::Error)
                } else {
                    f
                });
            }
            Outcome::NoStartTls { ehlo } => findings.push(Finding::new(
                &NO_STARTTLS,
                &p.host,
                format!("EHLO reply: {ehlo}{at}"),
            )),
            Outcome::OldVersion(why) => {
                findings.push(Finding::new(&OLD_TLS, &p.host, format!("{why}{at}")))
            }
            Outcome::HandshakeFailed(why) => {
                findings.push(Finding::new(&HANDSHAKE, &p.host, format!("{why}{at}")))
            }
            Outcome::Unreachable(why) => not_tested.push(NotTested {
                area: "smtp_tls".into(),
                subject: p.host.clone(),
                reason: format!("{why}{at}"),
            }),
        }
    }
}
