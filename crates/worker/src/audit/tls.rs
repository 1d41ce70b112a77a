//! TLS client configuration for audits: the public roots (webpki-roots) plus any extra CA the operator trusts (an
//! internal CA, or a test CA), with the aws-lc-rs provider chosen explicitly so no process-wide default is needed.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::{Arc, Mutex};

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The roots audits trust: public CAs and the certificates in `extra_ca_pem`.
pub fn roots(extra_ca_pem: Option<&[u8]>) -> anyhow::Result<Arc<RootCertStore>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_ca_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            roots.add(cert?)?;
            added += 1;
        }
        anyhow::ensure!(added > 0, "the extra CA file holds no PEM certificate");
    }
    Ok(Arc::new(roots))
}

/// A strict client: a certificate that does not verify fails the handshake (MTA-STS policy fetches).
pub fn strict_config(roots: Arc<RootCertStore>) -> anyhow::Result<Arc<ClientConfig>> {
    Ok(Arc::new(
        ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// Where a recording client leaves its certificate verdict: `Some(reason)` when the certificate did not verify.
pub type CertificateVerdict = Arc<Mutex<Option<String>>>;

/// A client that records the certificate verdict and carries on, so an SMTP probe learns both the TLS version and
/// whether the certificate is valid (opportunistic SMTP TLS works with a bad certificate; the finding says so).
pub fn recording_config(
    roots: Arc<RootCertStore>,
) -> anyhow::Result<(Arc<ClientConfig>, CertificateVerdict)> {
    let inner = WebPkiServerVerifier::builder_with_provider(roots, provider()).build()?;
    let verdict = Arc::new(Mutex::new(None));
    let verifier = Arc::new(Recording {
        inner,
        verdict: verdict.clone(),
    });
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((Arc::new(config), verdict))
}

#[derive(Debug)]
struct Recording {
    inner: Arc<WebPkiServerVerifier>,
    verdict: CertificateVerdict,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Err(e) = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) && let Ok(mut v) = self.verdict.lock()
        {
            *v = Some(describe(&e));
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A certificate error in words an operator recognises.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::CertificateError as C;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            C::UnknownIssuer => {
                "certificate issued by an unknown CA (or the chain is incomplete)".into()
            }
            C::NotValidForName | C::NotValidForNameContext { .. } => {
                "certificate does not name this host".into()
            }
            C::Expired | C::ExpiredContext { .. } => "certificate has expired".into(),
            C::NotValidYet | C::NotValidYetContext { .. } => "certificate is not valid yet".into(),
            C::Revoked => "certificate is revoked".into(),
            other => format!("certificate is invalid: {other:?}"),
        },
        other => other.to_string(),
    }
}

/// True for handshake failures that mean "the server only speaks TLS older than 1.2".
pub fn is_version_problem(e: &std::io::Error) -> bool {
    let text = e.to_string();
    text.contains("ProtocolVersion")
        || text.contains("peer is incompatible")
        || text.contains("UnsupportedVersion")
}
