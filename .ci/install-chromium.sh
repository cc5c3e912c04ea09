#!/bin/bash
# Install Debian's chromium for the headless browser tests (tests/test_html_browser.py).
# Idempotent: does nothing when a chromium binary is already on PATH. Runs as root in CI.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
