//! STARTTLS probe of one MX host: greeting, EHLO, STARTTLS, handshake, QUIT. Nothing is ever sent as mail.

use relaywatch_audit::smtp_tls::Outcome;
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub async fn probe(
    host: &str,
    addr: SocketAddr,
    helo: &str,
    roots: Arc<RootCertStore>,
    timeout: Duration,
) -> Outcome {
    match tokio::time::timeout(timeout, run(host, addr, helo, roots)).await {
        Ok(o) => o,
        Err(_) => Outcome::Unreachable(format!(
            "{host} ({addr}) did not finish the SMTP dialogue within {timeout:?}"
        )),
    }
}

/// Reads one (possibly multi-line) SMTP reply: its code and text.
async fn reply<S: AsyncRead + Unpin>(r: &mut BufReader<S>) -> std::io::Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        if line.len() > 4096 || text.len() > 64 * 1024 {
            return Err(std::io::Error::other("reply too long"));
        }
        let code = line.get(..3).and_then(|c| c.parse::<u16>().ok());
        let more = line.as_bytes().get(3) == Some(&b'-');
        text.push_str(line.trim_end());
        text.push('\n');
        if !more {
            return code
                .map(|c| (c, text.trim_end().to_string()))
                .ok_or_else(|| {
                    std::io::Error::other(format!("not an SMTP reply: {}", line.trim_end()))
                });
        }
    }
}

async fn send<S: AsyncWrite + Unpin>(w: &mut S, line: &str) -> std::io::Result<()> {
    w.write_all(line.as_bytes()).await?;
    w.write_all(b"\r\n").await?;
    w.flush().await
}

async fn run(host: &str, addr: SocketAddr, helo: &str, roots: Arc<RootCertStore>) -> Outcome {
    let tcp = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return Outcome::Unreachable(format!("cannot connect to {host} ({addr}): {e}")),
    };
    let mut conn = BufReader::new(tcp);
    match reply(&mut conn).await {
        Ok((220, _)) => {}
        Ok((code, text)) => return Outcome::Unreachable(format!("greeting {code}: {text}")),
        Err(e) => return Outcome::Unreachable(format!("no greeting from {host}: {e}")),
    }
    if let Err(e) = send(conn.get_mut(), &format!("EHLO {helo}")).await {
        return Outcome::Unreachable(format!("EHLO failed: {e}"));
    }
    let ehlo = match reply(&mut conn).await {
        Ok((250, text)) => text,
        Ok((code, text)) => {
            return Outcome::NoStartTls {
                ehlo: format!("{code} {text}"),
            };
        }
        Err(e) => return Outcome::Unreachable(format!("no EHLO reply: {e}")),
    };
    let offers = ehlo.lines().any(|l| {
        l.get(4..)
            .is_some_and(|k| k.trim().eq_ignore_ascii_case("STARTTLS"))
    });
    if !offers {
        return Outcome::NoStartTls {
            ehlo: ehlo.replace('\n', " | "),
        };
    }
    if let Err(e) = send(conn.get_mut(), "STARTTLS").await {
        return Outcome::Unreachable(format!("STARTTLS failed: {e}"));
    }
    match reply(&mut conn).await {
        Ok((220, _)) => {}
        Ok((code, text)) => {
            return Outcome::HandshakeFailed(format!("STARTTLS answered {code} {text}"));
        }
        Err(e) => return Outcome::Unreachable(format!("no STARTTLS reply: {e}")),
    }
    let tcp = conn.into_inner();
    let (config, verdict) = match super::tls::recording_config(roots) {
        Ok(c) => c,
        Err(e) => return Outcome::HandshakeFailed(format!("TLS client setup failed: {e}")),
    };
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return Outcome::HandshakeFailed(format!("{host} is not a valid TLS server name"));
    };
    let mut tls = match tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
    {
        Ok(s) => s,
        Err(e) if super::tls::is_version_problem(&e) => {
            return Outcome::OldVersion(format!("handshake refused: {e}"));
        }
        Err(e) => return Outcome::HandshakeFailed(format!("TLS handshake failed: {e}")),
    };
    let version = tls
        .get_ref()
        .1
        .protocol_version()
        .map(|v| format!("{v:?}").replace("TLSv1_", "TLS 1."))
        .unwrap_or_else(|| "TLS".into());
    // Be polite; the verdict does not depend on the answer.
    let _ = send(&mut tls, "QUIT").await;
    let _ = tls.shutdown().await;
    let certificate_error = verdict.lock().ok().and_then(|v| v.clone());
    Outcome::Tls {
        version,
        certificate_error,
    }
}
