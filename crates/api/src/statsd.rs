//! Optional statsd output of delivery counts, for teams whose dashboards already read statsd (Graphite, Datadog
//! agents, Telegraf). Plain statsd lines over UDP: `<prefix>.<tenant>.deliveries.<status>:<n>|c` and
//! `<prefix>.<tenant>.delay:<ms>|ms`. statsd is lossy by design; a failed send is logged, never fails the ingest.

use std::net::UdpSocket;

/// Stay under a typical path MTU so no datagram is fragmented.
const MAX_DATAGRAM: usize = 1_400;

pub struct Statsd {
    socket: UdpSocket,
    prefix: String,
}

impl Statsd {
    /// `addr` is `host:port`; the socket is connected once so each send is one syscall.
    pub fn connect(addr: &str, prefix: &str) -> std::io::Result<Self> {
        let bind = if addr.starts_with('[') {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        };
        let socket = UdpSocket::bind(bind)?;
        socket.connect(addr)?;
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            prefix: sanitize(prefix),
        })
    }

    /// Sends counters by status and delay timings for one tenant, packed into as few datagrams as fit.
    pub fn send(&self, tenant: &str, counts: &[(String, u64)], delays_ms: &[u64]) {
        let tenant = sanitize(tenant);
        let lines = counts
            .iter()
            .map(|(status, n)| {
                format!(
                    "{}.{tenant}.deliveries.{}:{n}|c",
                    self.prefix,
                    sanitize(status)
                )
            })
            .chain(
                delays_ms
                    .iter()
                    .map(|ms| format!("{}.{tenant}.delay:{ms}|ms", self.prefix)),
            );
        let mut packet = String::new();
        for line in lines {
            if !packet.is_empty() && packet.len() + 1 + line.len() > MAX_DATAGRAM {
                self.flush(&packet);
                packet.clear();
            }
            if !packet.is_empty() {
                packet.push('\n');
            }
            packet.push_str(&line);
        }
        if !packet.is_empty() {
            self.flush(&packet);
        }
    }

    fn flush(&self, packet: &str) {
        if let Err(e) = self.socket.send(packet.as_bytes()) {
            tracing::debug!(error = %e, "statsd send failed");
        }
    }
}

/// statsd names use `.` as separator and `:`/`|` as syntax: replace anything else that could break a line.
fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_well_formed_and_packed() {
        let listener = UdpSocket::bind("127.0.0.1:0").unwrap();
        let s = Statsd::connect(&listener.local_addr().unwrap().to_string(), "rw").unwrap();
        s.send(
            "t1",
            &[
                ("sent".into(), 3),
                ("force-expired".into(), 1),
                ("we|ird:".into(), 1),
            ],
            &[1500],
        );
        let mut buf = [0u8; 2048];
        let n = listener.recv(&mut buf).unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(
            text,
            "rw.t1.deliveries.sent:3|c\nrw.t1.deliveries.force-expired:1|c\nrw.t1.deliveries.we_ird_:1|c\nrw.t1.delay:1500|ms"
        );
    }
}
