"""The real commands against Debian's OpenSSH: `sftpToBurs` uploads the Bursar files and
`importAlmaPayments` downloads the payments file, host-key checking on, key login."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bursar.sandbox.generator import generate_days
from tests.e2e.conftest import make_sandbox
from tests.e2e.test_direction1 import GOLDEN, run_day
from tests.e2e.test_direction2 import PREFIX, csv, open_fines, pays, row

pytestmark = pytest.mark.openssh


def test_upload_and_payments_download_through_openssh(openssh, tmp_path):
    worlds = generate_days(days=1)
    upload = tmp_path / "bursar-incoming"
    drop = tmp_path / "bursar-outgoing"
    upload.mkdir()
    drop.mkdir()
    with make_sandbox(tmp_path / "sandbox", worlds) as sandbox:
        sandbox.env.update({
            "BURSAR_SFTP_HOST": openssh.host, "BURSAR_SFTP_PORT": str(openssh.port),
            "BURSAR_SFTP_USER": openssh.user, "BURSAR_SFTP_PASSWORD": "", "BURSAR_SFTP_KEY_FILE": str(openssh.key_file),
            "BURSAR_SFTP_DIR": str(upload),
            "PAYMENTS_SFTP_HOST": openssh.host, "PAYMENTS_SFTP_PORT": str(openssh.port),
            "PAYMENTS_SFTP_USER": openssh.user, "PAYMENTS_SFTP_PASSWORD": "",
            "PAYMENTS_SFTP_KEY_FILE": str(openssh.ecdsa_key_file), "PAYMENTS_SFTP_DIR": str(drop),
            "SFTP_KNOWN_HOSTS": str(openssh.known_hosts),
        })
        run_day(sandbox, 0)
        sent = {p.name: p.read_bytes() for p in upload.iterdir()}
        golden = {p.name: p.read_bytes() for p in GOLDEN.glob("LIB_charges.dat.20260302.*")}
        assert sent == golden and not [p for p in upload.iterdir() if p.name.startswith(".")]

        fine = open_fines(sandbox, 1)[0]
        (drop / f"{PREFIX}_1.csv").write_bytes(csv([row(fine, "1.25")]))
        before = sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in drop.iterdir())
        result = sandbox.run("importAlmaPayments", day=worlds[0].day)
        assert result.returncode == 0, result.stdout + result.stderr
        assert pays(sandbox) == [(fine["ref"], Decimal("1.25"))]
        assert sorted((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in drop.iterdir()) == before

        stranger = tmp_path / "known_hosts_other"
        stranger.write_text(openssh.known_hosts.read_text().replace(f"[{openssh.host}]:{openssh.port}",
                                                                   f"[{openssh.host}]:1"))
        refused = sandbox.run("importAlmaPayments", day=worlds[0].day, extra_env={"SFTP_KNOWN_HOSTS": str(stranger)})
        assert refused.returncode == 1 and "refusing to connect" in refused.stderr
