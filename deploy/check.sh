#!/usr/bin/env bash
# Checks of deploy/: systemd units (systemd-analyze verify and security), Dockerfiles (hadolint), the compose file
# (structure), the Helm chart (helm lint through Helm's Go SDK, rendered manifests against the Kubernetes schemas) and
# the example configurations (loaded by the real binaries). Needs the dev binaries (cargo build) in CARGO_TARGET_DIR.
# Docker images cannot be built here (no Docker engine): they are linted, not built.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
BIN="$CARGO_TARGET_DIR/debug"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "--- systemd units"
if ! command -v systemd-analyze >/dev/null; then
  apt-get install -y -q systemd >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q systemd >/dev/null; }
fi
# The units name /usr/bin/relaywatch{,-agent}, which a package installs; verify them as they are with only that path
# pointed at this build's binaries (verify checks that ExecStart's program exists and is executable).
for unit in relaywatch relaywatch-agent; do
  sed "s#/usr/bin/#$BIN/#g" "deploy/$unit.service" >"$tmp/$unit.service"
done
# verify exits 0 on warnings such as unknown keys: any output is a failure.
out=$(systemd-analyze verify --man=no "$tmp/relaywatch.service" "$tmp/relaywatch-agent.service" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "$out"; echo "FAIL: systemd-analyze verify reported the above"; exit 1; fi
echo "systemd-analyze verify: clean"
for unit in relaywatch relaywatch-agent; do
  line=$(systemd-analyze security --offline=yes "$tmp/$unit.service" 2>&1 | grep 'Overall exposure level')
  echo "$line"
  level=$(sed -E 's/.*: ([0-9.]+) .*/\1/' <<<"$line")
  # 2.0 and below is systemd's "OK" band; anything above means a hardening option went missing.
  awk -v l="$level" 'BEGIN { exit !(l <= 2.0) }' || { echo "FAIL: $unit.service exposure $level > 2.0"; exit 1; }
done
grep -q '^SupplementaryGroups=adm' deploy/relaywatch-agent.service
grep -q '^User=relaywatch-agent' deploy/relaywatch-agent.service

echo "--- example configurations"
RELAYWATCH_LOG=warn "$BIN/relaywatch" --config deploy/relaywatch.example.toml --data-dir "$tmp/data" migrate >/dev/null
echo "deploy/relaywatch.example.toml: loads (relaywatch migrate)"
"$BIN/relaywatch-agent" parse --help >/dev/null
RELAYWATCH_AGENT_STATE_DIR="$tmp/agent" RELAYWATCH_AGENT_API_KEY=rw_x \
  RELAYWATCH_AGENT_API_URL="http://127.0.0.1:9" RELAYWATCH_AGENT_LOGS="$tmp/mail.log" \
  timeout 20 "$BIN/relaywatch-agent" check --config deploy/relaywatch-agent.example.toml >"$tmp/check.out" 2>&1 || true
if ! grep -q '^ok   configuration is valid' "$tmp/check.out"; then
  cat "$tmp/check.out"; echo "FAIL: the agent refuses its example configuration"; exit 1
fi
echo "deploy/relaywatch-agent.example.toml: loads (relaywatch-agent check)"

venv=$(venv_for deploy .ci/tools/requirements-deploy.txt)

echo "--- Dockerfiles (hadolint $("$venv/bin/hadolint" --version | awk '{print $NF}'))"
"$venv/bin/hadolint" --config deploy/docker/hadolint.yaml deploy/docker/relaywatch.Dockerfile deploy/docker/agent.Dockerfile
grep -q '^USER 10001' deploy/docker/relaywatch.Dockerfile && grep -q '^HEALTHCHECK' deploy/docker/relaywatch.Dockerfile
grep -q '^USER 10002' deploy/docker/agent.Dockerfile && grep -q '^HEALTHCHECK' deploy/docker/agent.Dockerfile
echo "hadolint: clean; both images run as non-root with a health check"

echo "--- compose"
"$venv/bin/python" deploy/check_compose.py

echo "--- Helm chart"
"$venv/bin/python" deploy/check_helm.py 2> >(grep -v 'funcMap fail' >&2)
