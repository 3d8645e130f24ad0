#!/usr/bin/env bash
# `make e2e-deps`: what the end-to-end tests use but never install themselves. Debian's chromium
# (the HTML report test) and etcd plus a kube-apiserver built from Debian's source package by
# kube/build_apiserver.sh (the real audit log test). Silent and quick once all are there; without
# root and apt-get it says so and succeeds, and those tests skip (fail under CI=true).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
BIN="$(bash "$HERE/kube/build_apiserver.sh" --path)"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v etcd >/dev/null || missing+=(etcd)
[ -x "$BIN" ] || missing+=(kube-apiserver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "e2e-deps: ${missing[*]} missing; installing needs root and apt-get (Debian), so the end-to-end tests will skip"
  exit 0
fi
LOG="${TMPDIR:-/tmp}/kaad-e2e-deps.log"
build=""
[ -x "$BIN" ] || build=", building kube-apiserver into $(dirname "$BIN") takes a few minutes"
echo "e2e-deps: installing ${missing[*]} for the end-to-end tests (once$build; log: $LOG)"
export DEBIAN_FRONTEND=noninteractive
{
  bash "$HERE/kube/build_apiserver.sh"
  # build_apiserver.sh refreshed the package lists if it needed anything; refresh only on failure.
  command -v chromium || apt-get install -y -q chromium || { apt-get update -q && apt-get install -y -q chromium; }
} >"$LOG" 2>&1 || { tail -n 30 "$LOG"; echo "e2e-deps: failed; full log: $LOG" >&2; exit 1; }
