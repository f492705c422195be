#!/usr/bin/env bash
# Real-browser check of the playground's sign-in (not part of `go test`: it needs Chromium).
# Installs Debian's chromium and puppeteer-core (no browser download), starts `erpgraph` in dev mode,
# and runs check.js against it. Usage (from the repo root): server/playground/browsercheck/run.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }
[ -d node_modules/puppeteer-core ] || npm install --no-save --silent puppeteer-core@23
bin=$(mktemp -d)/erpgraph
(cd ../../.. && go build -o "$bin" .)
"$bin" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 50); do curl -fsS http://127.0.0.1:8080/healthz >/dev/null 2>&1 && break; sleep 0.2; done
node check.js
