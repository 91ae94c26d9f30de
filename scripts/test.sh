#!/usr/bin/env bash
# The whole test suite from a fresh clone: OS tools, npm dependencies, build, then vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-tools.sh
[[ -d node_modules ]] || npm ci --no-audit --no-fund
npm run build --silent
exec npx vitest run "$@"
