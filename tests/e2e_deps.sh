#!/usr/bin/env bash
# `make e2e-deps`: what the end-to-end tests use but never install themselves. Debian's chromium
# (the HTML report test) and etcd plus a kube-apiserver built from Debian's source package by
# kube/build_apiserver.sh (the real audit log test). Silent and quick once all are there; without
# root and apt-get it says so and succeeds, and those tests skip (fail under CI=true).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$(bash "$HERE/kube/build_apiserver.sh" --path)"
if command -v chromium >/dev/null && command -v etcd >/dev/null && [ -x "$BIN" ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "e2e-deps: chromium, etcd or kube-apiserver is missing and installing them needs root and apt-get (Debian); the end-to-end tests will skip"
  exit 0
fi
LOG="${TMPDIR:-/tmp}/kaad-e2e-deps.log"
echo "e2e-deps: installing chromium and etcd-server with apt-get and building kube-apiserver into $(dirname "$BIN") (once, a few minutes; log: $LOG)"
export DEBIAN_FRONTEND=noninteractive
{
  bash "$HERE/kube/build_apiserver.sh"
  # build_apiserver.sh refreshed the package lists if it needed anything; refresh only on failure.
  command -v chromium || apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }
} >"$LOG" 2>&1 || { tail -n 30 "$LOG"; echo "e2e-deps: failed; full log: $LOG" >&2; exit 1; }
