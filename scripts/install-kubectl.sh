#!/usr/bin/env bash
# Installs the kubectl versions of tools/kubectl/versions.txt, idempotently. Each is built once
# from upstream's published k8s.io/kubectl module (Go module proxy) with tools/kubectl/main.go
# and cached under $PYK8S_STATE_DIR/tools/kubectl (the Go module cache stays Go's own, outside
# the repo); a version already built is not asked for again. Links in .venv/bin: `kubectl`
# (the default line) and `kubectl-1.N` for each version; the test suite puts .venv/bin first on
# PATH and fails, never skips, when one is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STATE=${PYK8S_STATE_DIR:-/var/lib/pyk8s}
TOOLS="$STATE/tools/kubectl"
VERSIONS=tools/kubectl/versions.txt
[ -d .venv/bin ] || { echo "install-kubectl: no .venv (run scripts/bootstrap.sh first)" >&2; exit 1; }
mkdir -p "$TOOLS"

build() {  # build <minor> <module version> <destination>
    local minor=$1 version=$2 dest=$3 src
    command -v go >/dev/null 2>&1 || { echo "install-kubectl: kubectl $minor is missing and there is no go to build it" >&2; exit 1; }
    src=$(mktemp -d "$TOOLS/build-$minor.XXXXXX")
    trap 'rm -rf "$src"' RETURN
    cp tools/kubectl/main.go "$src/"
    local patch=${version#v0.}          # 31.3
    local gitversion="v1.$patch"
    local ldflags="-s -w"
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        ldflags+=" -X $pkg.gitVersion=$gitversion -X $pkg.gitMajor=1 -X $pkg.gitMinor=${minor#1.}"
    done
    echo "install-kubectl: building kubectl $gitversion from k8s.io/kubectl@$version" >&2
    local attempt
    for attempt in 1 2 3; do
        if (cd "$src" && go mod init pyk8s.local/kubectl >/dev/null 2>&1 &&
            GOFLAGS=-mod=mod go get "k8s.io/kubectl@$version" "k8s.io/component-base@$version" >/dev/null 2>&1 &&
            GOFLAGS=-mod=mod go build -trimpath -buildvcs=false -ldflags "$ldflags" -o kubectl . ); then
            install -m 0755 "$src/kubectl" "$dest.tmp" && mv "$dest.tmp" "$dest"
            return 0
        fi
        rm -f "$src/go.mod" "$src/go.sum"
        echo "install-kubectl: build of $version failed (attempt $attempt)" >&2
        sleep $((attempt * 10))
    done
    echo "install-kubectl: could not build kubectl from k8s.io/kubectl@$version" >&2
    exit 1
}

built=0
default=
while read -r minor version mark; do
    case "$minor" in ''|'#'*) continue ;; esac
    dest="$TOOLS/kubectl-v1.${version#v0.}"
    want="v1.${version#v0.}"
    have=$("$dest" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1 || true)
    if [ "$have" != "$want" ]; then
        build "$minor" "$version" "$dest"
        built=$((built + 1))
    fi
    ln -sfn "$dest" ".venv/bin/kubectl-$minor"
    [ "$mark" = default ] && default=$minor
done < "$VERSIONS"
[ -n "$default" ] || { echo "install-kubectl: $VERSIONS marks no default" >&2; exit 1; }
# Builds of versions no longer pinned (and of interrupted runs) are removed: 60-75 MB each.
for old in "$TOOLS"/kubectl-v* "$TOOLS"/build-*; do
    [ -e "$old" ] || continue
    keep=0
    for link in .venv/bin/kubectl-1.*; do [ "$(readlink "$link")" = "$old" ] && keep=1; done
    [ "$keep" = 1 ] || rm -rf "$old"
done
ln -sfn "$ROOT/.venv/bin/kubectl-$default" .venv/bin/kubectl
echo "install-kubectl: kubectl $(.venv/bin/kubectl version --client -o json | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p' | head -1) at .venv/bin/kubectl, $(grep -c '^1\.' "$VERSIONS") versions in .venv/bin/kubectl-1.N ($built built now)"
