#!/usr/bin/env bash
# Build kube-apiserver v1.20.2 offline from Debian bookworm's `kubernetes` source package
# (1.20.5+really1.20.2, the full upstream tree with vendor/), with Debian's Go 1.19, and
# install Debian's etcd-server beside it. The binary is cached outside the repository and
# built only when missing. Prints the binary's path on the last line; with --path, only prints
# where it is (or would be) and installs nothing: the tests ask only that, `make e2e-deps` builds.
set -euo pipefail
CACHE="${KAAD_KUBE_CACHE:-$HOME/.cache/kaad/kube}"
# The name records the build recipe: a changed recipe builds anew instead of reusing.
BIN="$CACHE/kube-apiserver-v1.20.2-reflect2-1.0.2"
if [ "${1:-}" = --path ]; then echo "$BIN"; exit 0; fi
export DEBIAN_FRONTEND=noninteractive
need=()
command -v etcd >/dev/null || need+=(etcd-server)
if [ ! -x "$BIN" ]; then
  command -v go >/dev/null || need+=(golang-go)
  command -v dpkg-source >/dev/null || need+=(dpkg-dev)
  command -v rsync >/dev/null || need+=(rsync)
  [ -d /usr/share/gocode/src/github.com/modern-go/reflect2 ] || need+=(golang-github-modern-go-reflect2-dev)
fi
if [ ${#need[@]} -gt 0 ] || [ ! -x "$BIN" ]; then
  if ! grep -rqsE '^Types:.*deb-src|^deb-src ' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    # Source entries mirroring the machine's own Debian sources (same mirror, suites, keys).
    sed -e 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      > /etc/apt/sources.list.d/kaad-deb-src.sources
  fi
  apt-get update -q >&2
fi
[ ${#need[@]} -gt 0 ] && apt-get install -y -q "${need[@]}" >&2
if [ ! -x "$BIN" ]; then
  mkdir -p "$CACHE"
  work="$(mktemp -d "${TMPDIR:-/tmp}/kaad-kube-build.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source --download-only kubernetes >&2 && dpkg-source -x --skip-patches kubernetes_*.dsc src >&2)
  # v1.20's vendored modern-go/reflect2 1.0.1 crashes under Go >= 1.18 ("nil pointer
  # dereference" in UnsafeMapType.Key, e.g. on listing secrets); Debian's 1.0.2 fixes it.
  rm -rf "$work/src/vendor/github.com/modern-go/reflect2"
  mkdir -p "$work/src/vendor/github.com/modern-go/reflect2"
  find /usr/share/gocode/src/github.com/modern-go/reflect2 -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) \
    ! -name '*_test.go' -exec cp {} "$work/src/vendor/github.com/modern-go/reflect2/" \;
  (cd "$work/src" && CGO_ENABLED=0 GOFLAGS=-mod=vendor GOCACHE="$work/gocache" make WHAT=cmd/kube-apiserver >&2)
  cp "$(find "$work/src/_output" -type f -name kube-apiserver | head -1)" "$BIN.tmp"
  mv "$BIN.tmp" "$BIN"
fi
echo "$BIN"
