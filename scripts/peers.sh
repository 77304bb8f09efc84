#!/usr/bin/env bash
# Build the real peers of the harness's built-ins into .peers/bin (git-ignored):
#   toxiproxy-server  from github.com/Shopify/toxiproxy/v2 (scripts/peers/toxiproxy/go.mod)
#   jaeger            from github.com/jaegertracing/jaeger  (scripts/peers/jaeger/go.mod)
# Each tool is one small Go module of our own (go.mod + go.sum pin every version), built
# with -trimpath. Cached: a binary newer than its module's go.mod and go.sum is kept.
#
# Where Go is missing this says so and exits 0: the harness's built-ins stay the default.
# With CI=true a missing Go or a failed build exits non-zero (CI must test the real peers).
#
#   scripts/peers.sh            build what is missing or stale, print versions
#   scripts/peers.sh --force    rebuild both
#   PEERS="toxiproxy" scripts/peers.sh   only the named tools
set -euo pipefail
cd "$(dirname "$0")/.."

out=".peers/bin"
force=0
[ "${1:-}" = "--force" ] && force=1
in_ci=0
[ "${CI:-}" = "true" ] && in_ci=1

fail() {
  echo "peers: $*" >&2
  if [ "$in_ci" -eq 1 ]; then exit 1; fi
  echo "peers: continuing without it: the harness's built-ins stay the default" >&2
  exit 0
}

if [ -z "${GO:-}" ]; then
  GO="$(command -v go || true)"
  if [ -z "$GO" ] && [ -x /usr/local/go/bin/go ]; then GO=/usr/local/go/bin/go; fi
fi
if [ -z "$GO" ] || ! [ -x "$GO" ]; then
  fail "Go not found${GO:+ at GO=$GO} (install Go >= 1.24.6, e.g. from https://go.dev/dl/, and put it on PATH, or set GO=/path/to/go)"
fi

# tool name | binary | package | module whose version is printed
tools=(
  "toxiproxy|toxiproxy-server|github.com/Shopify/toxiproxy/v2/cmd/server|github.com/Shopify/toxiproxy/v2"
  "jaeger|jaeger|github.com/jaegertracing/jaeger/cmd/jaeger|github.com/jaegertracing/jaeger"
)
wanted="${PEERS:-toxiproxy jaeger}"
mkdir -p "$out"
total_start=$(date +%s.%N)

for entry in "${tools[@]}"; do
  IFS='|' read -r name binary package module <<<"$entry"
  case " $wanted " in *" $name "*) ;; *) continue ;; esac
  dir="scripts/peers/$name"
  target="$out/$binary"
  start=$(date +%s.%N)
  if [ "$force" -eq 0 ] && [ -x "$target" ] && [ "$target" -nt "$dir/go.mod" ] && [ "$target" -nt "$dir/go.sum" ]; then
    state="cached"
  else
    echo "peers: building $binary ($package) ..." >&2
    pinned=$(awk -v m="$module" '$1 == m {print $2} $1 == "require" && $2 == m {print $3}' "$dir/go.mod" | head -1)
    ldflags="-s -w"
    # Toxiproxy's release builds stamp the version (.goreleaser.yml); GET /version answers it.
    [ "$name" = "toxiproxy" ] && ldflags="$ldflags -X $module.Version=${pinned#v}"
    if ! (cd "$dir" && GOFLAGS="${GOFLAGS:--buildvcs=false}" "$GO" build -trimpath -ldflags="$ldflags" -o "../../../$target.tmp" "$package"); then
      rm -f "$target.tmp"
      fail "building $binary failed (see the go output above); try: cd $dir && go build $package"
    fi
    mv -f "$target.tmp" "$target"
    state="built"
  fi
  version=$("$GO" version -m "$target" | awk -v m="$module" '($1 == "mod" || $1 == "dep") && $2 == m {print $3}')
  took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  printf 'peers: %-17s %-9s %s in %ss (%s)\n' "$binary" "${version:-unknown}" "$state" "$took" "$target"
done

took=$(awk -v a="$total_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
echo "peers: done in ${took}s"
