#!/usr/bin/env bash
# schemathesis against a live `relaywatch serve --no-worker` (SQLite, free loopback port) with the installation admin's key, over
# every operation of openapi/openapi.json: no 5xx, every status code documented, content types and response bodies as
# the spec says. Bounded for CI: SCHEMATHESIS_MAX_EXAMPLES per operation (default 25), SCHEMATHESIS_MAX_TIME seconds
# for the main pass (default 200; the second pass at most 30), a fixed seed (SCHEMATHESIS_SEED) so a failure
# reproduces. Needs the dev binary.
set -euo pipefail
cd "$(dirname "$0")/../.."
source .ci/lib.sh
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT

venv=$(venv_for schemathesis tests/schemathesis/requirements.txt)
echo "schemathesis $("$venv/bin/schemathesis" --version | awk '{print $NF}')"
start_server "$work"
echo "relaywatch serve at $RW_URL"

# Every operation, with the admin key. Two passes: the operations that could delete the key's own tenant or revoke the
# key itself (after which every request is 401 and the rest of the run tests nothing) run last, on their own.
# One worker: hypothesis on Python 3.11 can trip over a CPython AST bug when several threads generate at once.
destructive='^(DELETE /v1/tenants/\{id\}|DELETE /v1/api-keys/\{id\})$'
spec="$PWD/openapi/openapi.json"
st() {
  # From the temporary directory: schemathesis keeps a .schemathesis/ cache in the current directory.
  (cd "$work" && "$venv/bin/schemathesis" run "$spec" \
    --url "$RW_URL" \
    --header "Authorization: Bearer $RW_ADMIN_KEY" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-25}" \
    --seed "${SCHEMATHESIS_SEED:-20261129}" \
    --workers 1 \
    --request-timeout 10 \
    --suppress-health-check too_slow,filter_too_much \
    --no-color "$@")
}
status=0
echo "--- pass 1: every operation but the two that can revoke the test's own credentials"
st --phases examples,coverage,fuzzing,stateful --max-time "${SCHEMATHESIS_MAX_TIME:-200}" \
  --exclude-name-regex "$destructive" --report junit --report-dir "$work/report1" || status=$?
echo "--- pass 2: DELETE /v1/tenants/{id} and DELETE /v1/api-keys/{id}, with the operations that create what they delete"
st --phases examples,coverage,fuzzing,stateful --max-time 30 \
  --include-name-regex '^(POST /v1/tenants|POST /v1/api-keys|DELETE /v1/tenants/\{id\}|DELETE /v1/api-keys/\{id\})$' \
  --report junit --report-dir "$work/report2" || status=$?

if grep -q 'panicked' "$work/server.log"; then
  echo "FAIL: the server panicked during the run:"; grep -m5 -A3 'panicked' "$work/server.log"; status=1
fi
exit "$status"
