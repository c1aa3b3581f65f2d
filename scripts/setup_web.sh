#!/usr/bin/env bash
# Install what the browser demo and its test (tests/test_web.py) need: Debian's Chromium,
# Node.js 20+ with npm (already on the project's machines; installed from Debian if absent),
# and web/'s npm packages (onnxruntime-web, onnxruntime-node, playwright-core) from
# web/package-lock.json.
# No tool downloads a browser of its own.  Idempotent: skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export DEBIAN_FRONTEND=noninteractive

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ "${#missing[@]}" -gt 0 ]; then
    apt-get update -qq
    apt-get install -y -qq "${missing[@]}" >/dev/null
fi

node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 20 ]; then
    echo "setup_web.sh: playwright-core needs Node.js >= 20, found $(node --version)" >&2
    exit 1
fi

lock_hash=$(sha256sum web/package-lock.json | cut -d' ' -f1)
stamp=web/node_modules/.setup_web_lock_hash
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$lock_hash" ]; then
    # --ignore-scripts: onnxruntime-node's install script downloads GPU binaries; its CPU
    # binding ships in the package.
    (cd web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$lock_hash" > "$stamp"
fi
echo "setup_web.sh: $(/usr/bin/chromium --version 2>/dev/null), node $(node --version), web/node_modules ready"
