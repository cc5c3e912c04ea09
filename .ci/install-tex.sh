#!/bin/bash
# Install a TeX engine for tests/test_explain.py::test_latex_compiles (explain --format latex).
# Debian's texlive-latex-base without recommends: pdflatex, amsmath, geometry, longtable; about
# 40 MB to download and 120 MB installed. Idempotent: does nothing when pdflatex is on PATH.
set -euo pipefail
if command -v pdflatex >/dev/null 2>&1; then
    exit 0
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends texlive-latex-base >/dev/null
command -v pdflatex >/dev/null
