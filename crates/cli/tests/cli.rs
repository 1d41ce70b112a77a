//! The `relaywatch` binary as operators and their scripts use it: first start, admin commands beside a running
//! server, machine-readable output, help text.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_relaywatch");

fn relaywatch(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(BIN);
    c.arg("--data-dir")
        .arg(data_dir)
        .env_remove("RELAYWATCH_DATABASE_URL")
        .env("RELAYWATCH_LOG", "warn");
    c
}

/// `name=value` lines of a command's stdout.
fn values(stdout: &[u8]) -> std::collections::HashMap<String, String> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

struct Server {
    child: Child,
    port: u16,
    first_start: std::collections::HashMap<String, String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `relaywatch serve` and reads its first-start lines until the server answers.
fn serve(data_dir: &std::path::Path) -> Server {
    // reqwest may be built without a crypto provider of its own (feature unification with the agent).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let port = free_port();
    let mut child = relaywatch(data_dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("relaywatch serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let client = reqwest::blocking::Client::new();
    let mut lines = Vec::new();
    loop {
        while let Ok(line) = rx.try_recv() {
            lines.push(line);
        }
        if client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .is_ok_and(|r| r.status() == 200)
        {
            std::thread::sleep(Duration::from_millis(100));
            while let Ok(line) = rx.try_recv() {
                lines.push(line);
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "relaywatch serve did not become ready"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Server {
        child,
        port,
        first_start: values(lines.join("\n").as_bytes()),
    }
}

#[test]
fn first_start_prints_a_working_admin_key_and_admin_commands_work_beside_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve(dir.path());
    let key = server
        .first_start
        .get("api_key")
        .expect("first start prints api_key=")
        .clone();
    assert!(key.starts_with("rw_"));
    assert!(server.first_start.contains_key("tenant_id"));
    assert!(server.first_start.contains_key("admin_password"));
    let client = reqwest::blocking::Client::new();
    let base = format!("http://127.0.0.1:{}", server.port);
    let me: serde_json::Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["installation_admin"], true);
    assert_eq!(
        client.get(format!("{base}/docs/")).send().unwrap().status(),
        200
    );

    // While serve runs on the same SQLite file.
    let out = relaywatch(dir.path())
        .args([
            "tenant",
            "create",
            "Acme",
            "--domain",
            "acme.example",
            "--ip",
            "192.0.2.7",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created = values(&out.stdout);
    let tenant = created["tenant_id"].clone();
    let tenant_key = created["api_key"].clone();
    let domains: serde_json::Value = client
        .get(format!("{base}/v1/sending-domains"))
        .bearer_auth(&tenant_key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(domains["items"][0]["domain"], "acme.example");

    let out = relaywatch(dir.path())
        .args([
            "key", "create", "--tenant", &tenant, "--scope", "ingest", "--name", "mx1",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ingest_key = values(&out.stdout)["api_key"].clone();
    let me: serde_json::Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&ingest_key)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(me["scopes"], serde_json::json!(["ingest"]));
    assert_eq!(me["tenant_id"], tenant);

    // A second start finds the admin and prints no new key.
    drop(server);
    let again = serve(dir.path());
    assert!(
        !again.first_start.contains_key("api_key"),
        "{:?}",
        again.first_start
    );
}

#[test]
fn bad_arguments_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = relaywatch(dir.path())
        .args(["tenant", "create", "x", "--domain", "not a domain"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--domain"));
    let out = relaywatch(dir.path())
        .args(["key", "create", "--tenant", &uuid_like(), "--scope", "read"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no tenant"));
    let out = relaywatch(dir.path())
        .args(["key", "create", "--tenant", &uuid_like(), "--scope", "root"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

fn uuid_like() -> String {
    "01a224d1-dec0-7073-8341-b695f66e5b06".to_string()
}

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["tenant", "--help"],
        vec!["tenant", "create", "--help"],
        vec!["tenant", "list", "--help"],
        vec!["key", "--help"],
        vec!["key", "create", "--help"],
        vec!["openapi", "--help"],
    ] {
        let out = Command::new(BIN).args(&args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("Usage:"), "{args:?}: {text}");
        assert!(
            text.lines().next().is_some_and(|l| l.len() > 10),
            "{args:?} has no description: {text}"
        );
    }
}

#[test]
fn migrate_and_openapi_print_machine_readable_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = relaywatch(dir.path()).arg("migrate").output().unwrap();
    assert!(out.status.success());
    assert!(values(&out.stdout).contains_key("migration"));
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    let spec: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = serve(dir.path());
    let pid = server.child.id().to_string();
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    let exit = loop {
        if let Some(exit) = server.child.try_wait().unwrap() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "relaywatch serve did not stop within 40 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        exit.success(),
        "serve exits 0 after a graceful stop, got {exit:?}"
    );
    let gone = reqwest::blocking::Client::new()
        .get(format!("http://127.0.0.1:{}/healthz", server.port))
        .send();
    assert!(gone.is_err(), "the port is closed after the stop");
}
