#!/usr/bin/env bash
# Fetches the panel's pinned front-end libraries from the npm registry (package-lock.json) and copies the files
# the panel and /api/docs serve into src/robofleet/web/static/vendor/ (git-ignored, shipped in the wheel). Idempotent.
# No package's install script runs: swagger-ui-dist's dependency @scarf/scarf would report the install over the
# network, and nothing served needs a build step.
set -euo pipefail
cd "$(dirname "$0")/.."
vendor=src/robofleet/web/static/vendor
stamp=$vendor/.built
if [ -f "$stamp" ] && [ "$stamp" -nt package-lock.json ] && [ "$stamp" -nt package.json ] \
   && [ "$stamp" -nt scripts/build-assets.sh ]; then
  exit 0
fi
if ! command -v npm >/dev/null; then
  echo "npm is needed to fetch the panel's front-end libraries (apt-get install npm)" >&2
  exit 1
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
mkdir -p "$vendor/swagger-ui"
cp node_modules/htmx.org/dist/htmx.min.js "$vendor/htmx.min.js"
cp node_modules/htmx-ext-sse/dist/sse.min.js "$vendor/sse.js" 2>/dev/null || cp node_modules/htmx-ext-sse/sse.js "$vendor/sse.js"
for file in swagger-ui-bundle.js swagger-ui.css favicon-32x32.png LICENSE NOTICE; do
  cp "node_modules/swagger-ui-dist/$file" "$vendor/swagger-ui/$file"
done
touch "$stamp"
echo "panel assets ready in $vendor"
