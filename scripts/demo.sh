#!/usr/bin/env bash
# The main job end to end on a fresh machine: install and build, start a throwaway local Distribution
# registry on a free loopback port, push testdata/hello.wasm, pull it back, compare, stop the registry.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
npm run build --silent

work=$(mktemp -d)
cleanup() {
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

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
echo "demo: throwaway registry on $registry"

set -x
node dist/cli/main.js push testdata/hello.wasm "$registry/wasm-to-oci:v1"
node dist/cli/main.js pull "$registry/wasm-to-oci:v1" --out "$work/test.wasm"
cmp testdata/hello.wasm "$work/test.wasm"
node --no-warnings -e '
  const { WASI } = require("node:wasi");
  const wasi = new WASI({ version: "preview1" });
  WebAssembly.instantiate(require("node:fs").readFileSync(process.argv[1]), wasi.getImportObject())
    .then(({ instance }) => wasi.start(instance));
' "$work/test.wasm"
set +x
echo "demo: pushed, pulled and verified testdata/hello.wasm"
