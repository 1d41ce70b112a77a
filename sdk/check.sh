#!/usr/bin/env bash
# SDK check: generates a Python client (openapi-python-client) and TypeScript types (openapi-typescript, requests
# through openapi-fetch) from openapi/openapi.json into a temporary directory (never committed), starts a live
# `relaywatch serve --no-worker` on SQLite on a free loopback port, creates one tenant per SDK with `relaywatch tenant create`,
# and runs sdk/python/smoke.py and sdk/typescript/smoke.ts against it. Tool versions are pinned in
# sdk/python/requirements.txt and sdk/typescript/package-lock.json. Needs the dev binary (cargo build).
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
ROOT=$PWD
BIN="$CARGO_TARGET_DIR/debug/relaywatch"
work=$(mktemp -d)
trap 'stop_server; rm -rf "$work"' EXIT

t0=$SECONDS
py=$(venv_for sdk sdk/python/requirements.txt)
nm=$(node_modules_for sdk sdk/typescript)
echo "tools ready in $((SECONDS - t0)) s: openapi-python-client $("$py/bin/openapi-python-client" --version | awk '{print $NF}'), openapi-typescript $(node -p "require('$nm/openapi-typescript/package.json').version"), openapi-fetch $(node -p "require('$nm/openapi-fetch/package.json').version")"

echo "--- generate"
mkdir -p "$work/python" "$work/ts"
"$py/bin/openapi-python-client" generate --path openapi/openapi.json --config sdk/python/openapi-python-client.yaml \
  --meta none --output-path "$work/python/relaywatch_client" >"$work/gen-python.log" 2>&1 \
  || { cat "$work/gen-python.log"; exit 1; }
# The generator reports schemas it could not turn into code as warnings: none are acceptable.
if grep -qi 'warning' "$work/gen-python.log"; then cat "$work/gen-python.log"; echo "FAIL: openapi-python-client warnings"; exit 1; fi
echo "python: $(find "$work/python/relaywatch_client/api" -name '*.py' ! -name '__init__.py' | wc -l) operations"
"$nm/.bin/openapi-typescript" openapi/openapi.json -o "$work/ts/schema.d.ts" >"$work/gen-ts.log" 2>&1 \
  || { cat "$work/gen-ts.log"; exit 1; }
cp sdk/typescript/smoke.ts sdk/typescript/tsconfig.json sdk/typescript/package.json "$work/ts/"
ln -s "$nm" "$work/ts/node_modules"
(cd "$work/ts" && node_modules/.bin/tsc -p tsconfig.json) || { echo "FAIL: the TypeScript smoke test does not type-check against the generated types"; exit 1; }
echo "typescript: schema.d.ts $(wc -l <"$work/ts/schema.d.ts") lines, smoke.ts type-checks (tsc --strict)"

echo "--- live server"
start_server "$work"
echo "relaywatch serve at $RW_URL (SQLite in $work/data)"
tenant() {  # tenant NAME -> sets T_ID and T_KEY from `relaywatch tenant create`
  local out
  out=$(RELAYWATCH_LOG=warn "$BIN" --data-dir "$work/data" tenant create "$1")
  T_ID=$(sed -n 's/^tenant_id=//p' <<<"$out")
  T_KEY=$(sed -n 's/^api_key=//p' <<<"$out")
  [ -n "$T_ID" ] && [ -n "$T_KEY" ]
}

echo "--- python SDK"
tenant "sdk-python"
RW_TENANT_ID=$T_ID RW_KEY=$T_KEY PYTHONPATH="$work/python" "$py/bin/python" sdk/python/smoke.py

echo "--- typescript SDK"
tenant "sdk-typescript"
(cd "$work/ts" && RW_TENANT_ID=$T_ID RW_KEY=$T_KEY node out/smoke.js)
