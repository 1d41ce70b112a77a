# Shared helpers of .ci/ship.sh, deploy/check.sh, sdk/check.sh and tests/schemathesis/run.sh (sourced, not run).
# Tools are pinned in requirements/package files in the repository and installed once into $HOME/.cache/relaywatch-ci,
# keyed by the hash of those files, so CI reruns on a fresh clone reuse them.

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/relaywatch-target}"
RW_CACHE="${RW_CACHE:-$HOME/.cache/relaywatch-ci}"
export PIP_CACHE_DIR="${PIP_CACHE_DIR:-$HOME/.cache/pip}"
export npm_config_cache="${npm_config_cache:-$HOME/.cache/npm}"
export npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
mkdir -p "$RW_CACHE"

_hash() { cat "$@" | sha256sum | cut -c1-16; }

# venv_for NAME REQUIREMENTS: prints the path of a virtualenv with REQUIREMENTS installed (created on first use).
venv_for() {
  local name=$1 req=$2 dir
  dir="$RW_CACHE/venv-$name-$(_hash "$req")"
  if [ ! -x "$dir/bin/python" ] || [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    python3 -m venv "$dir" >&2
    "$dir/bin/pip" install --quiet --disable-pip-version-check -r "$req" >&2
    touch "$dir/.complete"
  fi
  printf '%s\n' "$dir"
}

# node_modules_for NAME DIR: prints the path of a node_modules installed from DIR/package.json and DIR/package-lock.json
# (npm ci; created on first use).
node_modules_for() {
  local name=$1 src=$2 dir
  dir="$RW_CACHE/node-$name-$(_hash "$src/package.json" "$src/package-lock.json")"
  if [ ! -f "$dir/.complete" ]; then
    rm -rf "$dir"
    mkdir -p "$dir"
    cp "$src/package.json" "$src/package-lock.json" "$dir/"
    (cd "$dir" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error >&2)
    touch "$dir/.complete"
  fi
  printf '%s\n' "$dir/node_modules"
}

# free_port: a free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# start_server DIR: starts `relaywatch serve --no-worker` on SQLite in DIR on a free loopback port; sets RW_URL,
# RW_PID, RW_ADMIN_KEY (the first-start installation admin key) and RW_TENANT_ID. The caller traps stop_server.
# No worker: it would audit the domains and sweep the IPs the tests register (DNS, SMTP) beyond loopback; the API
# itself makes no outside connection.
start_server() {
  local dir=$1 port bin="$CARGO_TARGET_DIR/debug/relaywatch"
  port=$(free_port)
  RW_URL="http://127.0.0.1:$port"
  RELAYWATCH_LOG=warn "$bin" --data-dir "$dir/data" serve --no-worker --listen "127.0.0.1:$port" \
    >"$dir/first-start.txt" 2>"$dir/server.log" &
  RW_PID=$!
  for _ in $(seq 1 300); do
    if curl -fsS "$RW_URL/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$RW_PID" 2>/dev/null; then cat "$dir/server.log" >&2; echo "relaywatch serve exited" >&2; return 1; fi
    sleep 0.1
  done
  curl -fsS "$RW_URL/readyz" >/dev/null
  RW_ADMIN_KEY=$(sed -n 's/^api_key=//p' "$dir/first-start.txt")
  RW_TENANT_ID=$(sed -n 's/^tenant_id=//p' "$dir/first-start.txt")
  [ -n "$RW_ADMIN_KEY" ] || { echo "no api_key= in the first start's output" >&2; return 1; }
  export RW_URL RW_PID RW_ADMIN_KEY RW_TENANT_ID
}

stop_server() {
  if [ -n "${RW_PID:-}" ] && kill -0 "$RW_PID" 2>/dev/null; then
    kill -TERM "$RW_PID" 2>/dev/null || true
    wait "$RW_PID" 2>/dev/null || true
  fi
  RW_PID=
}
