#!/usr/bin/env bash
# Builds the relaywatch and relaywatch-agent .deb packages with cargo-deb and checks what is inside them.
#   deploy/deb.sh            release packages: cargo build --release, then target/debian/*.deb (the documented way)
#   deploy/deb.sh --ci DIR   CI: packages the dev-profile binaries already built (cargo build), stripped, into DIR
# cargo-deb is installed with `cargo install cargo-deb --version $CARGO_DEB_VERSION --locked` when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
CARGO_DEB_VERSION=3.8.0

if ! cargo deb --version 2>/dev/null | grep -q "$CARGO_DEB_VERSION"; then
  # Its own target directory: the shared one stays free for the workspace build.
  env -u CARGO_TARGET_DIR cargo install cargo-deb --version "$CARGO_DEB_VERSION" --locked --quiet
fi
echo "$(cargo deb --version)"

if [ "${1:-}" = --ci ]; then
  out=$2
  # The dev profile keeps CI fast (no second, optimised build); cargo-deb warns that it is meant for releases.
  args=(--profile dev --no-build --strip --fast --quiet -o "$out")
else
  out="$CARGO_TARGET_DIR/debian"
  args=(--locked -o "$out")
fi
mkdir -p "$out"
cargo deb -p relaywatch-cli "${args[@]}"
cargo deb -p relaywatch-agent "${args[@]}"

fail() { echo "FAIL: $*" >&2; exit 1; }
check_deb() {  # check_deb PACKAGE BINARY UNIT CONFIG USER
  local deb list control
  deb=$(ls -t "$out/$1"_*.deb | head -n1)
  list=$(dpkg-deb -c "$deb")
  control=$(dpkg-deb -f "$deb")
  for path in "./usr/bin/$2" "./usr/lib/systemd/system/$3" "./etc/relaywatch/$4" \
              "./usr/share/doc/$1/examples/$4" "./usr/share/doc/$1/postfix.md"; do
    grep -qF " $path" <<<"$list" || fail "$deb lacks $path"
  done
  grep -qE '^-rwxr-xr-x (root/root|0/0) .* \./usr/bin/'"$2"'$' <<<"$list" || fail "$deb: /usr/bin/$2 is not root-owned 0755"
  grep -q "^Package: $1$" <<<"$control" || fail "$deb: Package is not $1"
  grep -q '^Depends:.*adduser' <<<"$control" || fail "$deb: does not depend on adduser"
  dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./conffiles | grep -qx "/etc/relaywatch/$4" || fail "$deb: $4 is not a conffile"
  dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst | grep -q "adduser --system .* $5$" || fail "$deb: postinst does not create $5"
  dpkg-deb --ctrl-tarfile "$deb" | tar -xO ./postinst | grep -q "deb-systemd-helper" || fail "$deb: postinst does not register $3"
  # The packaged unit is the one in deploy/, and the binary inside runs.
  diff <(dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/lib/systemd/system/$3") "deploy/$3" >/dev/null || fail "$deb: $3 differs from deploy/$3"
  dpkg-deb --fsys-tarfile "$deb" | tar -xO "./usr/bin/$2" >"$out/.$2.check" && chmod +x "$out/.$2.check"
  "$out/.$2.check" --version >/dev/null || fail "$deb: $2 --version does not run"
  rm -f "$out/.$2.check"
  echo "$deb: $(du -h "$deb" | cut -f1), $(grep -c . <<<"$list") entries: /usr/bin/$2, $3, /etc/relaywatch/$4 (conffile), user $5"
}
check_deb relaywatch relaywatch relaywatch.service relaywatch.toml relaywatch
check_deb relaywatch-agent relaywatch-agent relaywatch-agent.service agent.toml relaywatch-agent
