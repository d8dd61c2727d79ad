#!/usr/bin/env bash
# Upstream's kube-apiserver, kube-scheduler and kube-proxy, built from the published
# k8s.io/kubernetes module pinned in conformance/go.mod, as yardsticks for the benches'
# `--against upstream` runs (bench/api_bench.py, bench/scheduler_bench.py, bench/proxy_bench.py).
# Nothing of upstream's source is copied into the repo: the module names the packages.
#
# Builds once into $PYK8S_TOOLS_DIR/upstream/<version>/ (default /var/lib/pyk8s/tools), rebuilt
# only when conformance/go.mod or go.sum change (as scripts/conformance.sh does for e2e.test),
# and prints one line per binary: `NAME PATH`.
#
# Go's default cgo setting (not upstream's CGO_ENABLED=0 release builds) so the build reuses
# e2e.test's build cache; the version is stamped with -ldflags -X like upstream's
# hack/lib/version.sh does, so `kube-apiserver --version` and /version say the real release.
set -euo pipefail
cd "$(dirname "$0")/.."
MOD=$PWD/conformance
TOOLS=${PYK8S_TOOLS_DIR:-/var/lib/pyk8s/tools}/upstream
VERSION=$(awk '($1 == "require" && $2 == "k8s.io/kubernetes") {print $3; exit} ($1 == "k8s.io/kubernetes" && $2 ~ /^v/) {print $2; exit}' "$MOD/go.mod")
[ -n "$VERSION" ] || { echo "upstream-binaries: no k8s.io/kubernetes in $MOD/go.mod" >&2; exit 1; }
BIN=$TOOLS/$VERSION
NAMES=(kube-apiserver kube-scheduler kube-proxy)
say() { echo "upstream-binaries: $*" >&2; }
export PATH=$PATH:/usr/local/go/bin

stamp=$(cat "$MOD/go.mod" "$MOD/go.sum" | sha256sum | cut -d' ' -f1)
fresh=1
[ "$(cat "$BIN/.stamp" 2>/dev/null || true)" = "$stamp" ] || fresh=0
for n in "${NAMES[@]}"; do [ -x "$BIN/$n" ] || fresh=0; done
if [ "$fresh" = 0 ]; then
    command -v go >/dev/null || { say "go is not installed"; exit 1; }
    mkdir -p "$BIN"
    say "building ${NAMES[*]} of k8s.io/kubernetes $VERSION into $BIN"
    start=$(date +%s)
    minor=${VERSION#v*.}; minor=${minor%%.*}
    major=${VERSION#v}; major=${major%%.*}
    ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    (
        cd "$MOD"
        go mod download
        for n in "${NAMES[@]}"; do
            go build -ldflags "$ldflags" -o "$BIN/$n.new" "k8s.io/kubernetes/cmd/$n"
        done
    )
    for n in "${NAMES[@]}"; do mv "$BIN/$n.new" "$BIN/$n"; done
    echo "$stamp" > "$BIN/.stamp"
    say "built in $(( $(date +%s) - start )) s; $(du -sh "$BIN" | cut -f1) in $BIN"
fi
for n in "${NAMES[@]}"; do echo "$n $BIN/$n"; done
