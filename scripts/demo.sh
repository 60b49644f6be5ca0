#!/usr/bin/env bash
# The main job end to end (npm run demo). Works on a machine with no registry at all: it installs the npm packages,
# builds, pushes testdata/hello.wasm into an OCI image layout (the embedded default), inspects it, pulls
# it back and runs it. When the Distribution registry is installed (Debian package docker-registry), it also starts a
# throwaway one on a free loopback port, copies the module there, pulls it, compares, and stops it; when
# notary-server is installed too (Debian package notary), it signs a push and verifies a pull.
set -euo pipefail
cd "$(dirname "$0")/.."
# WASM_TO_OCI_DEMO_BUILT=1: dist/ is built already (test/e2e/readme.test.ts runs the demo on the
# build under test, which must not be rebuilt while other tests use it).
if [ -z "${WASM_TO_OCI_DEMO_BUILT:-}" ]; then
  if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    npm ci --no-audit --no-fund
  fi
  npm run build --silent
fi

work=$(mktemp -d)
cleanup() {
  if [ -n "${pid:-}" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
export XDG_CACHE_HOME="$work/cache"
cli() { node dist/cli/main.cjs "$@"; }

echo "== into an OCI image layout (no registry needed)"
cli push testdata/hello.wasm "oci:$work/layout:v1"
cli inspect "oci:$work/layout:v1"
cli pull "oci:$work/layout:v1" --out "$work/from-layout.wasm"
cmp testdata/hello.wasm "$work/from-layout.wasm"
cli run "oci:$work/layout:v1"

if command -v docker-registry >/dev/null 2>&1; then
  echo "== through a throwaway Distribution registry"
  cat >"$work/config.yml" <<YAML
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $work/data
http:
  addr: 127.0.0.1:0
YAML
  docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 100); do
    port=$(grep -o 'listening on 127.0.0.1:[0-9]*' "$work/registry.log" | head -n1 | cut -d: -f2 || true)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "${port:-}" ] || { cat "$work/registry.log"; echo "demo: the registry did not start" >&2; exit 1; }
  registry="127.0.0.1:$port"
  cli push testdata/hello.wasm "$registry/wasm-to-oci:v1"
  cli pull "$registry/wasm-to-oci:v1" --out "$work/test.wasm"
  cmp testdata/hello.wasm "$work/test.wasm"
  cli copy "$registry/wasm-to-oci:v1" "oci:$work/layout:from-registry"
  cli tags "oci:$work/layout"
  cli run "$registry/wasm-to-oci:v1"

  if command -v notary-server >/dev/null 2>&1; then
    echo "== signed with Notary v1 through a throwaway notary-server"
    nport=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
    cat >"$work/notary.json" <<JSON
{"server": {"http_addr": "127.0.0.1:$nport"}, "trust_service": {"type": "local"},
 "storage": {"backend": "memory"}, "logging": {"level": "error"}}
JSON
    notary-server -config "$work/notary.json" >"$work/notary.log" 2>&1 &
    npid=$!
    for _ in $(seq 1 100); do
      node -e 'require("http").get(process.argv[1], (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on("error", () => process.exit(1))' \
        "http://127.0.0.1:$nport/_notary_server/health" && break
      sleep 0.1
    done
    export SIGNY_ROOT_PASSPHRASE=demo-root-passphrase SIGNY_TARGETS_PASSPHRASE=demo-targets-passphrase
    export SIGNY_SNAPSHOT_PASSPHRASE=demo-snapshot-passphrase
    trust=(--server "http://127.0.0.1:$nport" -d "$work/trust")
    cli push testdata/hello.wasm "$registry/signed:v1" --sign "${trust[@]}"
    cli pull "$registry/signed:v1" --out "$work/signed.wasm" --sign "${trust[@]}"
    cmp testdata/hello.wasm "$work/signed.wasm"
    kill "$npid" 2>/dev/null || true
    wait "$npid" 2>/dev/null || true
  fi
else
  echo "== no docker-registry here: skipped the registry part (apt-get install -y docker-registry to add it)"
fi
echo "demo: pushed, pulled, verified and ran testdata/hello.wasm"
