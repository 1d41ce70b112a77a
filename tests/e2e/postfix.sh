#!/usr/bin/env bash
# End-to-end test with a real Postfix: mail tagged X-Relaywatch-Tag goes through Debian's postfix to an SMTP sink on
# loopback that accepts some recipients, rejects others with 5xx and defers others with 4xx; relaywatch-agent follows
# Postfix's maillog_file and ships to `relaywatch serve`; check.py then asks the REST API (messages by tag, delivery
# statistics) whether every recipient shows the right status, DSN, reply and bounce class. Exit 1 on any mismatch.
#
# Runs as root (it configures /etc/postfix and restores it afterwards). Everything runs in a private network
# namespace that holds only loopback (`unshare -n`), so nothing can leave 127.0.0.0/8. The server runs on a fresh
# PostgreSQL database reached through the host's Unix socket (a file, so the network namespace does not hide it);
# where PostgreSQL is not available it falls back to the embedded SQLite database and says so.
#
# Env: RELAYWATCH_BIN and RELAYWATCH_AGENT_BIN (prebuilt binaries; otherwise built with cargo), RW_E2E_DIR (work
# folder, default a new /tmp/rw-e2e.*), CARGO_TARGET_DIR.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
say() { echo "[e2e $(date +%T)] $*"; }

if [ "$(id -u)" != 0 ]; then echo "tests/e2e/postfix.sh must run as root" >&2; exit 2; fi

if [ -z "${RW_E2E_IN_NETNS:-}" ]; then
  # Outside the namespace: the package mirror and cargo are reachable here.
  if ! dpkg -s postfix >/dev/null 2>&1; then
    say "installing postfix"
    apt-get update -qq
    echo "postfix postfix/main_mailer_type select Local only" | debconf-set-selections
    echo "postfix postfix/mailname string e2e.test" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
  fi
  if [ -z "${RELAYWATCH_BIN:-}" ] || [ -z "${RELAYWATCH_AGENT_BIN:-}" ]; then
    say "building relaywatch and relaywatch-agent"
    (cd "$ROOT" && cargo build --locked -q -p relaywatch-cli -p relaywatch-agent)
    TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
    export RELAYWATCH_BIN=${RELAYWATCH_BIN:-$TARGET/debug/relaywatch}
    export RELAYWATCH_AGENT_BIN=${RELAYWATCH_AGENT_BIN:-$TARGET/debug/relaywatch-agent}
  fi
  export RW_E2E_DIR=${RW_E2E_DIR:-$(mktemp -d /tmp/rw-e2e.XXXXXX)}
  PG_SOCKET_URL="postgres://postgres@localhost/postgres?host=/var/run/postgresql"
  if [ -z "${RW_E2E_DATABASE_URL:-}" ] && command -v psql >/dev/null && psql "$PG_SOCKET_URL" -qtAc 'SELECT 1' >/dev/null 2>&1; then
    # Databases of earlier runs go first; each run gets a new one.
    psql "$PG_SOCKET_URL" -tA -c "SELECT datname FROM pg_database WHERE datname LIKE 'rw\_e2e\_%'" \
      | while read -r db; do [ -n "$db" ] && psql "$PG_SOCKET_URL" -q -c "DROP DATABASE IF EXISTS \"$db\""; done
    DB=rw_e2e_$(date +%s)
    psql "$PG_SOCKET_URL" -q -c "CREATE DATABASE $DB"
    export RW_E2E_DATABASE_URL="postgres://postgres@localhost/$DB?host=/var/run/postgresql"
  fi
  say "work folder $RW_E2E_DIR; entering a private network namespace (loopback only)"
  exec unshare -n env RW_E2E_IN_NETNS=1 bash "$0" "$@"
fi

ip link set lo up
W=$RW_E2E_DIR
mkdir -p "$W/etc" "$W/orig" "$W/state" "$W/rw"
RUN_ID=e2e$(date +%s)
PIDS=()

cleanup() {
  set +e
  postfix stop >/dev/null 2>&1
  postsuper -d ALL >/dev/null 2>&1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  if [ -f "$W/orig/main.cf" ]; then cp -p "$W/orig/main.cf" "$W/orig/master.cf" /etc/postfix/; fi
}
trap cleanup EXIT

# ---- Postfix: maillog_file in the work folder, the tag logged by header_checks, mail for the test domains to the sink.
postfix stop >/dev/null 2>&1 || true
cp -p /etc/postfix/main.cf /etc/postfix/master.cf "$W/orig/"
cat >"$W/etc/transport" <<TRANSPORT
example.test  smtp:[127.0.0.1]:2525
e2e.test      smtp:[127.0.0.1]:2525
TRANSPORT
echo '/^X-Relaywatch-Tag:/ INFO' >"$W/etc/header_checks"
postmap "hash:$W/etc/transport"
postconf -e \
  "myhostname = mail.e2e.local" "mydomain = e2e.local" "myorigin = \$mydomain" \
  "mydestination = \$myhostname, localhost" \
  "inet_interfaces = loopback-only" "inet_protocols = ipv4" "mynetworks = 127.0.0.0/8" \
  "maillog_file_prefixes = /var, /dev/stdout, $W" "maillog_file = $W/maillog" \
  "transport_maps = hash:$W/etc/transport" "header_checks = regexp:$W/etc/header_checks" \
  "relayhost =" "smtp_dns_support_level = disabled" "smtp_host_lookup = native" \
  "smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination" \
  "smtp_tls_security_level = none" "smtpd_tls_security_level = none" \
  "notify_classes = resource, software"
# No chroot: the Debian init script that fills the chroot is not used here.
postconf -F '*/*/chroot' | awk '$3=="y"{print $1}' | while read -r svc; do postconf -F -e "$svc = n"; done
postsuper -d ALL >/dev/null 2>&1 || true

# ---- The SMTP sink and the Relaywatch server (SQLite: the host's PostgreSQL is outside this namespace).
python3 "$HERE/smtp_sink.py" --port 2525 --journal "$W/sink.jsonl" >"$W/sink.out" 2>&1 &
PIDS+=($!)
RW=(--data-dir "$W/rw")
if [ -n "${RW_E2E_DATABASE_URL:-}" ]; then
  RW+=(--database-url "$RW_E2E_DATABASE_URL")
  say "relaywatch serve on PostgreSQL (${RW_E2E_DATABASE_URL%%\?*})"
else
  say "PostgreSQL is not reachable: relaywatch serve on its embedded SQLite database"
fi
RELAYWATCH_LOG=warn "$RELAYWATCH_BIN" serve "${RW[@]}" --listen 127.0.0.1:18080 --no-worker >"$W/serve.out" 2>"$W/serve.err" &
PIDS+=($!)
for _ in $(seq 100); do curl -sf http://127.0.0.1:18080/healthz >/dev/null 2>&1 && break; sleep 0.2; done
curl -sf http://127.0.0.1:18080/healthz >/dev/null || { say "relaywatch serve did not start"; cat "$W/serve.err"; exit 1; }
TENANT=$("$RELAYWATCH_BIN" tenant create "e2e $RUN_ID" "${RW[@]}" 2>/dev/null | sed -n 's/^tenant_id=//p')
INGEST_KEY=$("$RELAYWATCH_BIN" key create --tenant "$TENANT" --scope ingest --name "agent on mail" "${RW[@]}" 2>/dev/null | sed -n 's/^api_key=//p')
READ_KEY=$("$RELAYWATCH_BIN" key create --tenant "$TENANT" --scope read --name "e2e checks" "${RW[@]}" 2>/dev/null | sed -n 's/^api_key=//p')
[ -n "$TENANT" ] && [ -n "$INGEST_KEY" ] && [ -n "$READ_KEY" ] || { say "could not create the tenant and keys"; exit 1; }
printf '%s\n' "$INGEST_KEY" >"$W/agent.key"; chmod 600 "$W/agent.key"
say "tenant $TENANT"

# ---- Postfix and the agent.
postfix start >"$W/postfix-start.out" 2>&1 || { cat "$W/postfix-start.out"; exit 1; }
for _ in $(seq 50); do grep -q 'daemon started' "$W/maillog" 2>/dev/null && break; sleep 0.2; done
say "$(grep 'daemon started' "$W/maillog" | tail -1 | cut -d' ' -f5-)"
"$RELAYWATCH_AGENT_BIN" check --api-url http://127.0.0.1:18080 --api-key-file "$W/agent.key" \
  --log "$W/maillog" --state-dir "$W/state"
"$RELAYWATCH_AGENT_BIN" run --api-url http://127.0.0.1:18080 --api-key-file "$W/agent.key" \
  --log "$W/maillog" --state-dir "$W/state" --host-name mail --batch-linger-ms 200 \
  --heartbeat-interval-secs 5 2>"$W/agent.err" &
PIDS+=($!)

# ---- Traffic, then the checks through the API.
python3 "$HERE/send_mail.py" "$RUN_ID" >"$W/plan.json"
say "sent $(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print(sum(map(len,p.values())), "recipients in", len(p), "messages")' "$W/plan.json")"
# Messages with a rejected recipient make Postfix send a bounce notice to the sender (delivered to the sink).
NOTICES=2
set +e
python3 "$HERE/check.py" http://127.0.0.1:18080 "$READ_KEY" "$W/plan.json" "$NOTICES"
STATUS=$?
set -e
if [ "$STATUS" != 0 ]; then
  say "FAILED; Postfix log, agent log and sink journal follow"
  tail -n 60 "$W/maillog"; tail -n 30 "$W/agent.err"; cat "$W/sink.jsonl"
fi
exit "$STATUS"
