//! MTA-STS policy fetches and SMTP STARTTLS probes against real HTTPS and SMTP servers on loopback, with
//! certificates from a test CA generated here, which the audit is configured to trust.

mod support;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use relaywatch_worker::audit::{AuditSettings, AuditTarget, Auditor};
use relaywatch_worker::dns::DnsSettings;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Relaywatch test CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// A server configuration presenting a certificate for `names`, issued by this CA.
    fn server(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let chain = vec![cert.der().clone(), self.cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        Arc::new(
            rustls::ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::aws_lc_rs::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap(),
        )
    }

    fn pem(&self) -> Vec<u8> {
        self.cert.pem().into_bytes()
    }
}

/// An HTTPS server answering every request with `response` (a raw HTTP response).
async fn https(config: Arc<rustls::ServerConfig>, response: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let response = response.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(response.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

/// An SMTP server that offers STARTTLS (with `tls`) or not (None).
async fn smtp(tls: Option<Arc<rustls::ServerConfig>>) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    serve_smtp(listener, tls);
    port
}

/// Two SMTP servers on one port (the audit probes one port for every MX host): 127.0.0.1 with `first`, 127.0.0.2
/// with `second`.
async fn smtp_pair(
    first: Option<Arc<rustls::ServerConfig>>,
    second: Option<Arc<rustls::ServerConfig>>,
) -> u16 {
    loop {
        let one = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = one.local_addr().unwrap().port();
        // The port may be taken on 127.0.0.2: try another.
        if let Ok(two) = TcpListener::bind(("127.0.0.2", port)).await {
            serve_smtp(one, first);
            serve_smtp(two, second);
            return port;
        }
    }
}

fn serve_smtp(listener: TcpListener, tls: Option<Arc<rustls::ServerConfig>>) {
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut conn = BufReader::new(tcp);
                let _ = conn
                    .get_mut()
                    .write_all(b"220 mx1.sts.test ESMTP\r\n")
                    .await;
                let mut line = String::new();
                loop {
                    line.clear();
                    if conn.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let verb = line.trim().to_ascii_uppercase();
                    if verb.starts_with("EHLO") {
                        let offer = if tls.is_some() {
                            "250-PIPELINING\r\n250 STARTTLS\r\n"
                        } else {
                            "250 PIPELINING\r\n"
                        };
                        let _ = conn
                            .get_mut()
                            .write_all(format!("250-mx1.sts.test\r\n{offer}").as_bytes())
                            .await;
                    } else if verb == "STARTTLS" {
                        let Some(config) = tls.clone() else { return };
                        let _ = conn
                            .get_mut()
                            .write_all(b"220 2.0.0 Ready to start TLS\r\n")
                            .await;
                        let Ok(mut s) = tokio_rustls::TlsAcceptor::from(config)
                            .accept(conn.into_inner())
                            .await
                        else {
                            return;
                        };
                        let mut buf = [0u8; 512];
                        let _ = s.read(&mut buf).await;
                        let _ = s.write_all(b"221 2.0.0 Bye\r\n").await;
                        return;
                    } else {
                        let _ = conn.get_mut().write_all(b"221 2.0.0 Bye\r\n").await;
                        return;
                    }
                }
            });
        }
    });
}

const ZONE: &str = r#"@ TXT "v=spf1 ip4:192.0.2.10 -all"
@ MX 10 mx1
mx1 A 127.0.0.1
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@sts.test"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@sts.test"
_mta-sts TXT "v=STSv1; id=20261129"
mta-sts A 127.0.0.1
s1._domainkey TXT "v=DKIM1; k=ed25519; p=ZvJ0P80q3oz0UVeqSD2jBmOO5l1lCAWA4SZ3l2giSpo="
"#;

fn policy(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

const ENFORCE: &str = "version: STSv1\r\nmode: enforce\r\nmx: mx1.sts.test\r\nmax_age: 604800\r\n";

/// Audits sts.test with the policy host on `https_port` and the MX on `smtp_port`; returns the MTA-STS and SMTP
/// findings as `severity code subject`.
async fn audit(
    dns: &support::DnsServer,
    https_port: u16,
    smtp_port: Option<u16>,
    ca: Option<Vec<u8>>,
) -> Vec<String> {
    audit_of(dns, https_port, smtp_port, ca, false).await
}

/// [`audit`], with the evidence after each finding when `evidence`.
async fn audit_of(
    dns: &support::DnsServer,
    https_port: u16,
    smtp_port: Option<u16>,
    ca: Option<Vec<u8>>,
    evidence: bool,
) -> Vec<String> {
    let auditor = Auditor::new(AuditSettings {
        dns: DnsSettings {
            nameservers: vec![dns.addr],
            timeout: Duration::from_secs(2),
            attempts: 1,
        },
        extra_ca_pem: ca,
        smtp_checks: smtp_port.is_some(),
        smtp_port: smtp_port.unwrap_or(25),
        https_port,
        transport_timeout: Duration::from_secs(5),
        ..AuditSettings::default()
    })
    .unwrap();
    let report = auditor
        .audit(&AuditTarget {
            domain: "sts.test".into(),
            selectors: vec!["s1".into()],
            ..Default::default()
        })
        .await;
    assert!(report.not_tested.is_empty(), "{:?}", report.not_tested);
    let mut got: Vec<String> = report
        .findings
        .iter()
        .map(|f| {
            let line = format!("{} {} {}", f.severity.as_str(), f.code, f.subject);
            if evidence {
                format!("{line}: {}", f.evidence)
            } else {
                line
            }
        })
        .collect();
    got.sort();
    got
}

#[tokio::test]
async fn a_valid_policy_and_starttls_with_a_trusted_certificate_are_clean() {
    let ca = Ca::new();
    let dns = support::serve(&[("sts.test".into(), ZONE.into())]).await;
    let web = https(
        ca.server(&["mta-sts.sts.test"]),
        policy("200 OK", "text/plain", ENFORCE),
    )
    .await;
    let mx = smtp(Some(ca.server(&["mx1.sts.test"]))).await;
    assert_eq!(
        audit(&dns, web, Some(mx), Some(ca.pem())).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn without_the_extra_ca_the_same_certificates_are_invalid() {
    let ca = Ca::new();
    let dns = support::serve(&[("sts.test".into(), ZONE.into())]).await;
    let web = https(
        ca.server(&["mta-sts.sts.test"]),
        policy("200 OK", "text/plain", ENFORCE),
    )
    .await;
    assert_eq!(
        audit(&dns, web, None, None).await,
        vec!["error mta_sts.certificate_invalid mta-sts.sts.test"]
    );
}

#[tokio::test]
async fn policy_problems_are_reported_one_by_one() {
    let ca = Ca::new();
    let dns = support::serve(&[("sts.test".into(), ZONE.into())]).await;
    let cases = [
        (
            policy("200 OK", "text/plain", "version: STSv1\r\nmode: enforce\r\nmx: *.other.test\r\nmax_age: 604800\r\n"),
            vec!["error mta_sts.mx_not_covered mx1.sts.test"],
        ),
        (policy("200 OK", "text/html", ENFORCE), vec!["error mta_sts.content_type sts.test"]),
        (
            "HTTP/1.1 301 Moved Permanently\r\nLocation: https://www.sts.test/\r\nContent-Length: 0\r\n\r\n".to_string(),
            vec!["error mta_sts.policy_redirect sts.test"],
        ),
        (policy("404 Not Found", "text/plain", "no"), vec!["error mta_sts.policy_unreachable sts.test"]),
        (
            policy("200 OK", "text/plain", "version: STSv1\r\nmode: testing\r\nmx: mx1.sts.test\r\nmax_age: 300\r\n"),
            vec!["info mta_sts.testing_mode sts.test", "warning mta_sts.max_age_out_of_range sts.test"],
        ),
        (
            policy("200 OK", "text/plain", "version: STSv2\r\nmode: enforce\r\nmx: mx1.sts.test\r\nmax_age: 604800\r\n"),
            vec!["error mta_sts.policy_syntax sts.test"],
        ),
    ];
    for (response, expected) in cases {
        let web = https(ca.server(&["mta-sts.sts.test"]), response.clone()).await;
        assert_eq!(
            audit(&dns, web, None, Some(ca.pem())).await,
            expected,
            "response {response:?}"
        );
    }
    // A certificate for another name.
    let web = https(
        ca.server(&["www.sts.test"]),
        policy("200 OK", "text/plain", ENFORCE),
    )
    .await;
    assert_eq!(
        audit(&dns, web, None, Some(ca.pem())).await,
        vec!["error mta_sts.certificate_invalid mta-sts.sts.test"]
    );
}

#[tokio::test]
async fn smtp_without_starttls_or_with_a_wrong_certificate_is_found() {
    let ca = Ca::new();
    let dns = support::serve(&[("sts.test".into(), ZONE.into())]).await;
    let web = https(
        ca.server(&["mta-sts.sts.test"]),
        policy("200 OK", "text/plain", ENFORCE),
    )
    .await;
    let plain = smtp(None).await;
    assert_eq!(
        audit(&dns, web, Some(plain), Some(ca.pem())).await,
        vec!["error smtp_tls.no_starttls mx1.sts.test"]
    );
    // Under an enforced MTA-STS policy a certificate for the wrong name stops delivery: an error, not a warning.
    let wrong = smtp(Some(ca.server(&["mail.elsewhere.test"]))).await;
    assert_eq!(
        audit(&dns, web, Some(wrong), Some(ca.pem())).await,
        vec!["error smtp_tls.certificate_invalid mx1.sts.test"]
    );
}

const TWO_MX: &str = r#"@ TXT "v=spf1 ip4:192.0.2.10 -all"
@ MX 10 mx1
@ MX 20 mx2
mx1 A 127.0.0.1
mx2 A 127.0.0.2
_dmarc TXT "v=DMARC1; p=reject; rua=mailto:dmarc@sts.test"
_smtp._tls TXT "v=TLSRPTv1; rua=mailto:tls@sts.test"
_mta-sts TXT "v=STSv1; id=20261129"
mta-sts A 127.0.0.1
s1._domainkey TXT "v=DKIM1; k=ed25519; p=ZvJ0P80q3oz0UVeqSD2jBmOO5l1lCAWA4SZ3l2giSpo="
"#;

#[tokio::test]
async fn every_mx_host_is_probed_and_each_gets_its_own_findings() {
    // mx1 offers STARTTLS with a good certificate, mx2 (the backup, less preferred) none at all: only probing
    // beyond the first MX finds the backup that takes mail in clear text.
    let ca = Ca::new();
    let dns = support::serve(&[("sts.test".into(), TWO_MX.into())]).await;
    let web = https(
        ca.server(&["mta-sts.sts.test"]),
        policy(
            "200 OK",
            "text/plain",
            "version: STSv1\r\nmode: enforce\r\nmx: mx1.sts.test\r\nmx: mx2.sts.test\r\nmax_age: 604800\r\n",
        ),
    )
    .await;
    let port = smtp_pair(Some(ca.server(&["mx1.sts.test"])), None).await;
    assert_eq!(
        audit(&dns, web, Some(port), Some(ca.pem())).await,
        vec!["error smtp_tls.no_starttls mx2.sts.test"]
    );
    // The other way round: mx1 without STARTTLS, mx2 with a certificate for another name.
    let port = smtp_pair(None, Some(ca.server(&["mail.elsewhere.test"]))).await;
    assert_eq!(
        audit(&dns, web, Some(port), Some(ca.pem())).await,
        vec![
            "error smtp_tls.certificate_invalid mx2.sts.test",
            "error smtp_tls.no_starttls mx1.sts.test",
        ]
    );
}

#[tokio::test]
async fn each_address_of_an_mx_host_is_probed_and_named_in_the_evidence() {
    // One host, two addresses: the good server on 127.0.0.1, one without STARTTLS on 127.0.0.2.
    let ca = Ca::new();
    let zone = ZONE.replace("mx1 A 127.0.0.1", "mx1 A 127.0.0.1\nmx1 A 127.0.0.2");
    let dns = support::serve(&[("sts.test".into(), zone)]).await;
    let web = https(
        ca.server(&["mta-sts.sts.test"]),
        policy("200 OK", "text/plain", ENFORCE),
    )
    .await;
    let port = smtp_pair(Some(ca.server(&["mx1.sts.test"])), None).await;
    let got = audit_of(&dns, web, Some(port), Some(ca.pem()), true).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with("error smtp_tls.no_starttls mx1.sts.test: ")
            && got[0].ends_with(&format!("[at 127.0.0.2:{port}]")),
        "{got:?}"
    );
}
