#!/usr/bin/env bash
# Installs what wasm-to-oci's build, tests and demo need on a fresh Debian machine:
# the npm dependencies (npm ci) and, when missing, the Debian packages docker-registry (the real CNCF
# Distribution registry the tests run against), skopeo (interop tests), apache2-utils (htpasswd, for the
# basic-auth registry), openssl (test certificates) and notary (notary-server and the notary CLI, for the
# Notary v1 signing tests).
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v docker-registry >/dev/null 2>&1 || [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
{ command -v notary-server >/dev/null 2>&1 && command -v notary >/dev/null 2>&1; } || missing+=(notary)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]} (Debian packages)"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
