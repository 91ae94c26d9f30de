#!/usr/bin/env bash
# Runs the whole suite (`npm test`) again on Node 24, the Active LTS, next to the machine's Node.
# Node 24 comes from the npm registry's `node` package (binary and headers), kept in .cache/node24.
# It is pinned to 24.18.1: from 24.19.0 Node's node::ObjectWrap registers environment cleanup hooks
# whose removal aborts the process ("RemoveEnvironmentCleanupHook ... (env) != nullptr") when V8
# finalizes a wrapped object outside a context, and better-sqlite3 12 (the last major that runs on
# Node 20) wraps every Statement that way: the controller dies at its first idle GC (nodejs/node#65446).
# better-sqlite3 is a native addon: it is built for Node 24 from those headers (offline, no
# download) once and cached; the machine's own build is put back on exit so the checkout keeps working.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
dir=${MPATCH_NODE24_DIR:-$root/.cache/node24}
pkg=$dir/node_modules/node

version=${MPATCH_NODE24_VERSION:-24.18.1}
if [[ ! -x $pkg/bin/node ]] || [[ $("$pkg/bin/node" -p 'process.versions.node') != "$version" ]]; then
  echo "test-node24: installing node@$version into $dir" >&2
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node@$version" >/dev/null
fi
node24=$pkg/bin/node
headers=$pkg/node_modules/node-linux-$("$node24" -p 'process.arch')
[[ -d $headers/include/node ]] || { echo "test-node24: no Node headers in $headers" >&2; exit 1; }

[[ -d node_modules ]] || npm ci --no-audit --no-fund

addon=node_modules/better-sqlite3/build/Release/better_sqlite3.node
sqlite_version=$(node -p 'require("better-sqlite3/package.json").version')
cached=$dir/better_sqlite3-$sqlite_version-node$version.node
saved=$dir/better_sqlite3-default.node
# Swapped by rename, never by writing over the file: a process still running with the addon
# mapped (a server started from this checkout) keeps its own copy intact.
put_addon () { cp "$1" "$addon.$$" && mv -f "$addon.$$" "$addon"; }
cp "$addon" "$saved"
trap 'put_addon "$saved"' EXIT

if [[ -f $cached ]]; then
  put_addon "$cached"
else
  echo "test-node24: building better-sqlite3 $sqlite_version for Node $("$node24" --version)" >&2
  PATH="$pkg/bin:$PATH" npm_config_nodedir="$headers" \
    npm rebuild better-sqlite3 --build-from-source --no-audit --no-fund --loglevel=error >/dev/null
  cp "$addon" "$cached"
fi
PATH="$pkg/bin:$PATH" node -e 'new (require("better-sqlite3"))(":memory:").close()'
echo "test-node24: npm test on Node $("$node24" --version)" >&2
PATH="$pkg/bin:$PATH" npm test "$@"
