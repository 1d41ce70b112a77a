//! A webhook receiver for tests: a raw HTTP/1.1 server on 127.0.0.1 that records every request (method, path,
//! headers, body) and answers from a script (a status, a delay, a redirect), one request per connection.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Answer {
    Status(u16),
    /// Wait, then answer with the status (a slow receiver; longer than the sender's timeout: a timeout).
    After(Duration, u16),
    /// 302 to this location.
    Redirect(String),
}

/// One request as received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Lower-case names.
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    pub received: Instant,
}

impl Request {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[derive(Default)]
struct State {
    script: VecDeque<Answer>,
    requests: Vec<Request>,
    in_flight: usize,
    max_in_flight: usize,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    default: Arc<Mutex<Answer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Answers `script` in order, then `default` to every further request.
    pub async fn start(script: Vec<Answer>, default: Answer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(State {
            script: script.into(),
            ..State::default()
        }));
        let default = Arc::new(Mutex::new(default));
        let (st, df) = (state.clone(), default.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((conn, _)) = listener.accept().await else {
                    return;
                };
                let (st, df) = (st.clone(), df.clone());
                tokio::spawn(async move {
                    let _ = serve(conn, st, df).await;
                });
            }
        });
        Self {
            addr,
            state,
            default,
            task,
        }
    }

    /// Always `status`.
    pub async fn answering(status: u16) -> Self {
        Self::start(Vec::new(), Answer::Status(status)).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_default(&self, answer: Answer) {
        *self.default.lock().unwrap() = answer;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.lock().unwrap().requests.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().requests.len()
    }

    /// The most requests that were being answered at the same time.
    pub fn max_in_flight(&self) -> usize {
        self.state.lock().unwrap().max_in_flight
    }
}

async fn serve(
    mut conn: tokio::net::TcpStream,
    state: Arc<Mutex<State>>,
    default: Arc<Mutex<Answer>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let path = first.next().unwrap_or_default().to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = conn.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let answer = {
        let mut s = state.lock().unwrap();
        s.requests.push(Request {
            method,
            path,
            headers,
            body,
            received: Instant::now(),
        });
        s.in_flight += 1;
        s.max_in_flight = s.max_in_flight.max(s.in_flight);
        s.script
            .pop_front()
            .unwrap_or_else(|| default.lock().unwrap().clone())
    };
    let (status, location) = match answer {
        Answer::Status(s) => (s, None),
        Answer::After(d, s) => {
            tokio::time::sleep(d).await;
            (s, None)
        }
        Answer::Redirect(to) => (302, Some(to)),
    };
    let mut res =
        format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 2\r\nconnection: close\r\n");
    if let Some(to) = location {
        res.push_str(&format!("location: {to}\r\n"));
    }
    res.push_str("\r\nok");
    let written = conn.write_all(res.as_bytes()).await;
    state.lock().unwrap().in_flight -= 1;
    written?;
    conn.shutdown().await
}
