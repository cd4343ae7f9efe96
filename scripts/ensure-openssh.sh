#!/bin/sh
# Make sure Debian's OpenSSH server (/usr/sbin/sshd) is installed, for the integration tests.
#
# Why: tests/integration runs the Bursar upload and the payments download against a real sshd
# on 127.0.0.1.  CI runs as root on Debian with apt reachable, so the binary is installed there
# when missing.  Elsewhere (not root) we say so and exit 1; the tests then skip with a reason.
#
# Idempotent and quiet: exits 0 at once when sshd is already present.  The package's own
# post-install may try to start the system service; that is harmless (the tests start their
# own sshd on an ephemeral port) and is suppressed when no init system is running.
set -eu

SSHD=/usr/sbin/sshd

if [ -x "$SSHD" ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "ensure-openssh: $SSHD is missing and installing openssh-server needs root; skipping" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-openssh: $SSHD is missing and apt-get is not available (not Debian?)" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
# policy-rc.d exit 101 = "do not start services" in containers without an init system; only
# added when absent and removed afterwards, so a real host's own policy is left alone.
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=no
if [ ! -e "$POLICY" ] && [ ! -d /run/systemd/system ]; then
    printf '#!/bin/sh\nexit 101\n' >"$POLICY" && chmod 0755 "$POLICY" && ADDED_POLICY=yes
fi
cleanup() {
    if [ "$ADDED_POLICY" = yes ]; then rm -f "$POLICY"; fi
}
trap cleanup EXIT

status=0
{
    apt-get update -qq &&
        apt-get install -y -qq --no-install-recommends openssh-server
} >/tmp/ensure-openssh.$$.log 2>&1 || status=$?

if [ "$status" -ne 0 ] || [ ! -x "$SSHD" ]; then
    echo "ensure-openssh: installing openssh-server failed (exit $status); last lines:" >&2
    tail -n 5 /tmp/ensure-openssh.$$.log >&2 || true
    rm -f /tmp/ensure-openssh.$$.log
    exit 1
fi
rm -f /tmp/ensure-openssh.$$.log
exit 0
