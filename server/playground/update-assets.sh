#!/bin/sh
# update-assets.sh fetches the playground's third-party files from the npm
# registry and copies them into assets/, where go:embed picks them up. The
# playground never loads code from a CDN: everything it runs is served by
# erpgraph itself, under a strict Content-Security-Policy.
#
# Usage: server/playground/update-assets.sh [graphiql-version] [react-version]
# Needs npm and tar. Review the diff (and the licenses) before committing.
set -eu

GRAPHIQL_VERSION=${1:-3.8.3} # the last major with a UMD build (graphiql.min.js)
REACT_VERSION=${2:-18.3.1}   # graphiql 3 needs React 18; React 19 dropped UMD builds

here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null
unpack() { # unpack <package> <version>
	mkdir "$1"
	tar -xzf "$1-$2.tgz" -C "$1" --strip-components=1
}
unpack graphiql "$GRAPHIQL_VERSION"
unpack react "$REACT_VERSION"
unpack react-dom "$REACT_VERSION"

assets="$here/assets"
cp graphiql/graphiql.min.js graphiql/graphiql.min.css "$assets/"
cp react/umd/react.production.min.js "$assets/"
cp react-dom/umd/react-dom.production.min.js "$assets/"
cp graphiql/LICENSE "$assets/LICENSE.graphiql"
cp react/LICENSE "$assets/LICENSE.react"
cp react-dom/LICENSE "$assets/LICENSE.react-dom"

cat >"$assets/VERSIONS" <<VERSIONS
graphiql $GRAPHIQL_VERSION (npm: graphiql.min.js, graphiql.min.css)
react $REACT_VERSION (npm: umd/react.production.min.js)
react-dom $REACT_VERSION (npm: umd/react-dom.production.min.js)
VERSIONS
echo "updated $assets"
