"""The off-site copy against a real S3 HTTP endpoint: moto's server mode on 127.0.0.1."""

from __future__ import annotations

import gzip
from decimal import Decimal

import pytest

from bursar.backup import SAFETY_DIR, BackupError, create_backup, list_backups, restore_backup
from bursar.clients.s3 import S3Target, download, list_objects, s3_target, upload_verified
from bursar.settings import load
from tests.backup.conftest import NOW, add_patron, files_in, patrons, s3_client


def test_target_from_settings():
    assert s3_target({"S3_BUCKET": None}) is None
    assert s3_target({"S3_BUCKET": "", "S3_PREFIX": "x"}) is None
    target = s3_target({"S3_BUCKET": "b", "S3_PREFIX": "/site/backups/", "S3_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert target == S3Target("b", "site/backups", "http://127.0.0.1:9")
    assert target.key("f.gz") == "site/backups/f.gz"
    assert S3Target("b", "", None).key("f.gz") == "f.gz"
    settings = load({"S3_BUCKET": "bkt", "S3_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert s3_target(settings) == S3Target("bkt", "", "http://127.0.0.1:9")


def test_backup_is_uploaded_and_verified(db_uri, backups_dir, s3):
    backup, key = create_backup(db_uri, backups_dir, now=NOW, keep=5, s3=s3)
    assert key == f"site/backups/{backup.name}"
    head = s3_client(s3.endpoint_url).head_object(Bucket=s3.bucket, Key=key)
    assert head["ContentLength"] == backup.path.stat().st_size
    assert list_objects(s3) == [(key, backup.size, list_objects(s3)[0][2])]
    body = s3_client(s3.endpoint_url).get_object(Bucket=s3.bucket, Key=key)["Body"].read()
    assert body == backup.path.read_bytes()


def test_dry_run_names_the_key_and_uploads_nothing(db_uri, backups_dir, s3):
    planned, key = create_backup(db_uri, backups_dir, now=NOW, keep=5, s3=s3, dry_run=True)
    assert key == f"site/backups/{planned.name}"
    assert list_objects(s3) == []
    assert not backups_dir.exists()


def test_listing_prefers_local_and_falls_back_to_s3(db_uri, backups_dir, s3, tmp_path):
    first, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5, s3=s3)
    second, _ = create_backup(db_uri, backups_dir, now=NOW.replace(hour=16), keep=5, s3=s3)
    client = s3_client(s3.endpoint_url)
    client.put_object(Bucket=s3.bucket, Key="site/backups/readme.txt", Body=b"not a backup")
    client.put_object(Bucket=s3.bucket, Key=f"site/backups/deeper/{first.name}", Body=b"elsewhere")
    client.put_object(Bucket=s3.bucket, Key=f"other/{first.name}", Body=b"other prefix")

    assert [b.location for b in list_backups(backups_dir, s3=s3)] == ["local", "local"]
    first.path.unlink()
    second.path.unlink()
    remote = list_backups(backups_dir, s3=s3)
    assert [(b.name, b.location, b.key) for b in remote] == [
        (second.name, "s3", f"site/backups/{second.name}"),
        (first.name, "s3", f"site/backups/{first.name}"),
    ]
    assert remote[0].size == second.size


def test_restore_from_s3_when_the_local_folder_is_empty(db_uri, db_path, backups_dir, s3):
    backup, _ = create_backup(db_uri, backups_dir, now=NOW, keep=5, s3=s3)
    backup.path.unlink()
    add_patron(db_uri, "P3", "4.00")

    (remote,) = list_backups(backups_dir, s3=s3)
    safety = restore_backup(db_uri, remote, backups_dir, now=NOW, s3=s3)

    assert patrons(db_uri) == [("P1", Decimal("12.50")), ("P2", Decimal("0.99"))]
    assert safety is not None and safety.path.parent == backups_dir / SAFETY_DIR
    assert files_in(backups_dir) == []  # the download was temporary


def test_corrupt_object_in_s3_is_refused_and_nothing_changes(db_uri, db_path, backups_dir, s3):
    backup, key = create_backup(db_uri, backups_dir, now=NOW, keep=5, s3=s3)
    backup.path.unlink()
    data = gzip.compress(b"garbage, not a database " * 100)
    s3_client(s3.endpoint_url).put_object(Bucket=s3.bucket, Key=key, Body=data[:-20])
    before = db_path.read_bytes()
    (remote,) = list_backups(backups_dir, s3=s3)
    with pytest.raises(BackupError):
        restore_backup(db_uri, remote, backups_dir, now=NOW, s3=s3)
    assert db_path.read_bytes() == before
    assert files_in(backups_dir) == [] and not (backups_dir / SAFETY_DIR).exists()


def test_missing_bucket_fails_the_backup_but_keeps_the_local_copy(db_uri, backups_dir, moto_endpoint):
    target = S3Target("no-such-bucket", "", moto_endpoint)
    with pytest.raises(BackupError) as caught:
        create_backup(db_uri, backups_dir, now=NOW, keep=5, s3=target)
    message = str(caught.value)
    assert "NoSuchBucket" in message and "s3://no-such-bucket/" in message
    assert "the local backup is at" in message and "testing" not in message
    local = caught.value.backup
    assert local is not None and local.path.exists()
    assert files_in(backups_dir) == [local.name]


def test_unreachable_endpoint_fails_the_backup_but_keeps_the_local_copy(db_uri, backups_dir, dead_endpoint):
    target = S3Target("bucket", "p", dead_endpoint)
    with pytest.raises(BackupError, match="S3 upload to s3://bucket/p/pybursar-sqlite-.* failed") as caught:
        create_backup(db_uri, backups_dir, now=NOW, keep=5, s3=target)
    assert str(caught.value.backup.path) in str(caught.value)
    assert files_in(backups_dir) == [caught.value.backup.name]


def test_stopped_server_fails_listing_and_download(backups_dir, tmp_path, dead_endpoint):
    target = S3Target("bucket", "", dead_endpoint)
    with pytest.raises(BackupError, match="S3 listing of s3://bucket/ failed"):
        list_backups(backups_dir, s3=target)
    with pytest.raises(BackupError, match="S3 download"):
        download(target, "k", tmp_path / "dest")
    assert files_in(tmp_path) == []


def test_upload_verified_direct(s3, tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"\x00\x01" * 5000)
    key = upload_verified(s3, path, "x.gz")
    assert key == "site/backups/x.gz"
    dest = tmp_path / "back.gz"
    download(s3, key, dest)
    assert dest.read_bytes() == path.read_bytes()
