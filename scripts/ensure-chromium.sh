#!/bin/sh
# Make sure Debian's Chromium (/usr/bin/chromium) is installed, for the reconcile report's
# rendering test (tests/e2e/test_reconcile_html.py).
#
# Why: the business office opens the HTML report in a browser; the test renders it headless and
# checks it loads nothing from outside the file.  CI runs as root on Debian with apt reachable,
# so the browser is installed there when missing.  Elsewhere (not root, no apt) we say so and exit
# 1; the test then skips with a reason.  Idempotent and quiet: exits 0 at once when present.
set -eu

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-chromium: $CHROMIUM is missing and installing chromium needs root; skipping" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available (not Debian?)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
LOG=/tmp/ensure-chromium.$$.log
status=0
{
    apt-get update -qq &&
        apt-get install -y -qq --no-install-recommends chromium
} >"$LOG" 2>&1 || status=$?

if [ "$status" -ne 0 ] || [ ! -x "$CHROMIUM" ]; then
    echo "ensure-chromium: installing chromium failed (exit $status); last lines:" >&2
    tail -n 5 "$LOG" >&2 || true
    rm -f "$LOG"
    exit 1
fi
rm -f "$LOG"
exit 0
