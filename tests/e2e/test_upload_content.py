"""sftpToBurs: a file counts as delivered only when the server holds exactly its bytes.

A same-name file with other content (the same size included: lines are fixed-width, so other
charges with the same line count have the same size) is never overwritten and never counted
as delivered; the run exits 1 naming both files' sizes and hashes.
"""

from __future__ import annotations

import hashlib

import pytest

from .test_direction1 import run_day


def written_export(sandbox) -> dict[str, bytes]:
    day = sandbox.install(0).day
    for command in ("importAlmaFines", "exportBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3)
    return {p.name: p.read_bytes() for p in sandbox.exports_dir.glob("LIB_charges.dat.*")}


def same_size_other_content(data: bytes) -> bytes:
    lines = data.split(b"\n")
    first = lines[0]
    lines[0] = first[:-1] + (b"X" if first[-1:] != b"X" else b"Y")  # last reference pad character
    return b"\n".join(lines)


@pytest.mark.parametrize("variant", ["same size", "other size"])
def test_a_same_name_file_with_other_content_is_never_overwritten(sandbox, variant):
    files = written_export(sandbox)
    name = sorted(files)[0]
    theirs = same_size_other_content(files[name]) if variant == "same size" else files[name] + files[name]
    (sandbox.upload_dir / name).write_bytes(theirs)
    result = sandbox.run("sftpToBurs", day=sandbox.worlds[0].day)
    assert result.returncode == 1, result.stdout + result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert name in message and "other content" in message and "not overwritten" in message
    assert hashlib.sha256(theirs).hexdigest() in message and hashlib.sha256(files[name]).hexdigest() in message
    assert f"{len(theirs)} bytes" in message and f"{len(files[name])} bytes" in message
    assert (sandbox.upload_dir / name).read_bytes() == theirs
    assert not (sandbox.exports_dir / "sent" / name).exists()
    assert {e["state"] for e in sandbox.ledger()["burs_exports"]} == {"written"}
    # it stays refused on every later run, until a person has looked
    assert sandbox.run("sftpToBurs", day=sandbox.worlds[0].day).returncode == 1


def test_an_identical_file_already_there_counts_as_delivered_without_sending(sandbox):
    files = written_export(sandbox)
    name = sorted(files)[0]
    (sandbox.upload_dir / name).write_bytes(files[name])
    before = (sandbox.upload_dir / name).stat().st_mtime_ns
    result = sandbox.run("sftpToBurs", day=sandbox.worlds[0].day)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{name} was already on the server with the same content" in result.stdout
    assert (sandbox.upload_dir / name).stat().st_mtime_ns == before
    assert sandbox.uploaded() == files
    assert {e["state"] for e in sandbox.ledger()["burs_exports"]} == {"sent"}


def test_export_ids_go_on_above_the_ids_on_the_server_and_in_the_archive(sandbox):
    # a file the Bursar has from an export 9 this store never made (say, sent before a restore)
    (sandbox.upload_dir / "LIB_charges.dat.20260301.9.1").write_bytes(b"")
    run_day(sandbox, 0)  # export 1; its upload reads the server's listing
    day = sandbox.install(1).day
    for command in ("importAlmaFines", "exportBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3)
    assert max(e["id"] for e in sandbox.ledger()["burs_exports"]) == 10
    assert sandbox.run("sftpToBurs", day=day).returncode == 0
    # an id only the local archive knows
    (sandbox.exports_dir / "sent" / "LIB_charges.dat.20260301.12.2").write_bytes(b"")
    day = sandbox.install(2).day
    for command in ("importAlmaFines", "exportBurs"):
        assert sandbox.run(command, day=day).returncode in (0, 3)
    assert max(e["id"] for e in sandbox.ledger()["burs_exports"]) == 13
    assert "LIB_charges.dat.20260304.13.1" in {p.name for p in sandbox.exports_dir.iterdir()}
