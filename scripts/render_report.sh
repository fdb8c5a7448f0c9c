#!/usr/bin/env bash
# Render a pgm3d report.html to a PNG in headless Chromium (Debian: apt install chromium).
#   scripts/render_report.sh runs/demo/report.html [out.png] [width] [height]
# The page is self-contained (images embedded), so it is opened straight from disk; the
# background-networking flags keep Chromium from trying to reach the network.
set -euo pipefail
html=${1:?usage: render_report.sh REPORT.html [OUT.png] [WIDTH] [HEIGHT]}
png=${2:-${html%.html}.png}
width=${3:-1280}
height=${4:-6000}
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$chrome" ]; then
  echo "render_report.sh: no Chromium found; on Debian: apt-get install chromium" >&2
  exit 1
fi
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
# WebGL through SwiftShader (software), and time for the interactive 3D views to draw
"$chrome" --headless=new --no-sandbox --use-angle=swiftshader --enable-unsafe-swiftshader \
  --virtual-time-budget=20000 --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$profile" --window-size="$width,$height" \
  --screenshot="$(realpath -m "$png")" "file://$(realpath "$html")" 2>/dev/null
echo "wrote $png"
