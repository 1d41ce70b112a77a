//! Writes events back as Postfix log lines. Used to prove the parser round-trips (property tests) and to build test
//! logs; not a general formatter: only the kinds that carry delivery facts are rendered.

use crate::event::{Event, EventKind, Header, Status};

/// Renders an event as an RFC 3339-stamped syslog line, or `None` for kinds this module does not write.
pub fn render_line(event: &Event<'_>) -> Option<String> {
    let header = event.header?;
    let mut line = header_text(&header);
    if let Some(q) = event.queue_id {
        line.push_str(&q.to_str());
        line.push_str(": ");
    }
    match &event.kind {
        EventKind::Delivery(d) => {
            line.push_str(&format!("to=<{}>", d.to));
            if let Some(o) = d.orig_to {
                line.push_str(&format!(", orig_to=<{o}>"));
            }
            if let Some(r) = d.relay {
                line.push_str(&format!(", relay={r}"));
            }
            if let Some(c) = d.conn_use {
                line.push_str(&format!(", conn_use={c}"));
            }
            if let Some(x) = d.delay {
                line.push_str(&format!(", delay={x}"));
            }
            if let Some(x) = d.delays {
                line.push_str(&format!(
                    ", delays={}/{}/{}/{}",
                    x.before_queue, x.in_queue, x.connection, x.transmission
                ));
            }
            if let Some(x) = d.dsn {
                line.push_str(&format!(", dsn={x}"));
            }
            if d.status == Status::Other {
                return None;
            }
            line.push_str(&format!(", status={}", d.status.as_str()));
            if !d.reply.raw.is_empty() {
                line.push_str(&format!(" ({})", d.reply.raw));
            }
        }
        EventKind::QueueActive { from, size, nrcpt } => {
            line.push_str(&format!("from=<{from}>"));
            if let Some(s) = size {
                line.push_str(&format!(", size={s}"));
            }
            if let Some(n) = nrcpt {
                line.push_str(&format!(", nrcpt={n}"));
            }
            line.push_str(" (queue active)");
        }
        EventKind::Expired { from, forced } => {
            let word = if *forced { "force-expired" } else { "expired" };
            line.push_str(&format!("from=<{from}>, status={word}, returned to sender"));
        }
        EventKind::Removed => line.push_str("removed"),
        EventKind::MessageId { message_id } => line.push_str(&format!("message-id={message_id}")),
        EventKind::Pickup { uid, from } => {
            if let Some(u) = uid {
                line.push_str(&format!("uid={u} "));
            }
            line.push_str(&format!("from=<{from}>"));
        }
        EventKind::DkimSignature { selector, domain } => line.push_str(&format!(
            "DKIM-Signature field added (s={selector}, d={domain})"
        )),
        _ => return None,
    }
    Some(line)
}

fn header_text(h: &Header<'_>) -> String {
    let mut s = h.time.to_rfc3339();
    s.push(' ');
    s.push_str(&h.host.to_str());
    s.push(' ');
    s.push_str(&h.program.name.to_str());
    if let Some(pid) = h.pid {
        s.push_str(&format!("[{pid}]"));
    }
    s.push_str(": ");
    s
}
