//! Fetching an MTA-STS policy: one HTTPS GET, no redirects followed (RFC 8461 §3.3), a size limit, a timeout.

use relaywatch_audit::mta_sts::PolicyFetch;
use rustls::ClientConfig;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RFC 8461 §3.3 suggests limiting the policy body; 64 KiB is far more than any real policy.
const MAX_RESPONSE: usize = 64 * 1024;

pub async fn fetch_policy(
    host: &str,
    addrs: &[SocketAddr],
    tls: Arc<ClientConfig>,
    timeout: Duration,
) -> PolicyFetch {
    match tokio::time::timeout(timeout, fetch(host, addrs, tls)).await {
        Ok(r) => r,
        Err(_) => {
            PolicyFetch::TimedOut(format!("no complete answer from {host} within {timeout:?}"))
        }
    }
}

async fn fetch(host: &str, addrs: &[SocketAddr], tls: Arc<ClientConfig>) -> PolicyFetch {
    let Some(addr) = addrs.first() else {
        return PolicyFetch::Failed(format!("{host} has no A or AAAA record"));
    };
    let tcp = match TcpStream::connect(addr).await {
        Ok(s) => s,
        Err(e) => return PolicyFetch::Failed(format!("cannot connect to {addr}: {e}")),
    };
    let Ok(name) = ServerName::try_from(host.to_string()) else {
        return PolicyFetch::Failed(format!("{host} is not a valid TLS server name"));
    };
    let mut stream = match tokio_rustls::TlsConnector::from(tls)
        .connect(name, tcp)
        .await
    {
        Ok(s) => s,
        Err(e) => {
            let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
            return match inner {
                Some(err @ rustls::Error::InvalidCertificate(_)) => {
                    PolicyFetch::CertificateInvalid(super::tls::describe(err))
                }
                _ => PolicyFetch::Failed(format!("TLS handshake with {addr} failed: {e}")),
            };
        }
    };
    let request = format!(
        "GET /.well-known/mta-sts.txt HTTP/1.1\r\nHost: {host}\r\nUser-Agent: relaywatch\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
    );
    if let Err(e) = stream.write_all(request.as_bytes()).await {
        return PolicyFetch::Failed(format!("cannot send the request: {e}"));
    }
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => break,
            Ok(n) => {
                raw.extend_from_slice(&buf[..n]);
                if raw.len() > MAX_RESPONSE {
                    return PolicyFetch::Failed(format!(
                        "the response is larger than {MAX_RESPONSE} bytes"
                    ));
                }
            }
            // Servers that close without close_notify are common; what was read is the response.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return PolicyFetch::Failed(format!("reading the response failed: {e}")),
        }
    }
    parse_response(&raw)
}

/// Status, headers and body of an HTTP/1.1 response (identity or chunked).
pub fn parse_response(raw: &[u8]) -> PolicyFetch {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return PolicyFetch::Failed("the server sent no complete HTTP header".into());
    };
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let Some(status) = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/"))
    else {
        return PolicyFetch::Failed(format!("not an HTTP response: `{status_line}`"));
    };
    let mut content_type = None;
    let mut location = None;
    let mut chunked = false;
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            let v = v.trim().to_string();
            match k.trim().to_ascii_lowercase().as_str() {
                "content-type" => content_type = Some(v),
                "location" => location = Some(v),
                "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
                _ => {}
            }
        }
    }
    if chunked {
        match dechunk(&body) {
            Some(b) => body = b,
            None => return PolicyFetch::Failed("malformed chunked body".into()),
        }
    }
    PolicyFetch::Fetched {
        status,
        content_type,
        location,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

fn dechunk(mut input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = input.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&input[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        input = &input[eol + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(input.get(..size)?);
        input = input.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_plain_and_chunked_responses() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nversion: STSv1\r\n",
        );
        assert!(
            matches!(r, PolicyFetch::Fetched { status: 200, ref body, .. } if body == "version: STSv1\r\n")
        );
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        );
        assert!(matches!(r, PolicyFetch::Fetched { ref body, .. } if body == "hello"));
        let r = parse_response(b"HTTP/1.1 301 Moved\r\nLocation: https://x/\r\n\r\n");
        assert!(matches!(
            r,
            PolicyFetch::Fetched {
                status: 301,
                location: Some(_),
                ..
            }
        ));
        assert!(matches!(parse_response(b"garbage"), PolicyFetch::Failed(_)));
    }
}
