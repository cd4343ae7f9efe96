"""The off-site copy of backups in S3 (or an S3-compatible store such as MinIO).

Why it looks the way it does:
- boto3 is imported only when S3 is actually used: it is slow to import and most runs
  never need it.
- Credentials come from boto3's standard chain (AWS_* variables, ~/.aws, instance roles);
  this module never sees or prints them.  TLS verification stays on.
- An upload counts only once it is verified: the body is sent with Content-MD5 (the server
  rejects a corrupted body), then HEAD must show the same size and, for a plain single-part
  object, an ETag equal to the MD5.  A backup that merely "seemed to upload" is worse than
  a reported failure.
- Every botocore failure becomes a one-line BackupError naming the bucket and key.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from bursar.errors import BackupError
from bursar.runtime import fs

_CHUNK = 1 << 20
_MAX_SINGLE_PUT = 5 * 1024**3  # S3's limit for one PUT


class _SettingsLike(Protocol):
    def get(self, name: str) -> str | None: ...


@dataclass(frozen=True)
class S3Target:
    """Where backups go: a bucket, a key prefix ("" for the bucket root), an optional endpoint."""

    bucket: str
    prefix: str
    endpoint_url: str | None

    def key(self, name: str) -> str:
        """The object key of a backup file name: the prefix joined with "/"."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def describe(self, key: str | None = None) -> str:
        return f"s3://{self.bucket}/{key if key is not None else self.prefix}"


def s3_target(settings: _SettingsLike | Mapping[str, str | None]) -> S3Target | None:
    """The S3 target from S3_BUCKET / S3_PREFIX / S3_ENDPOINT_URL; None when S3_BUCKET is unset."""
    bucket = (settings.get("S3_BUCKET") or "").strip()
    if not bucket:
        return None
    prefix = (settings.get("S3_PREFIX") or "").strip().strip("/")
    endpoint = (settings.get("S3_ENDPOINT_URL") or "").strip() or None
    return S3Target(bucket=bucket, prefix=prefix, endpoint_url=endpoint)


def _client(target: S3Target) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=10,
        read_timeout=60,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    try:
        return boto3.client("s3", endpoint_url=target.endpoint_url, config=config)
    except Exception as e:  # botocore raises ValueError for a malformed endpoint URL
        raise BackupError(f"cannot set up S3 for {target.describe()}: {_one_line(e)}") from None


def _one_line(e: BaseException) -> str:
    """A botocore error on one line, with anything that looks like a secret scrubbed."""
    text = " ".join(str(e).split()) or type(e).__name__
    for name in ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        secret = os.environ.get(name)
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text if len(text) <= 300 else text[:297] + "..."


def _failed(what: str, e: BaseException) -> BackupError:
    from botocore.exceptions import ClientError

    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = err.get("Code") or e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "?")
        message = err.get("Message") or ""
        return BackupError(f"{what} failed: {code}{': ' + _one_line(Exception(message)) if message else ''}")
    return BackupError(f"{what} failed: {_one_line(e)}")


def _md5(path: Path) -> bytes:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.digest()


def upload_verified(target: S3Target, path: Path, name: str) -> str:
    """Upload one backup file as `<prefix>/<name>` and verify it; return the key."""
    from botocore.exceptions import BotoCoreError, ClientError

    key = target.key(name)
    where = target.describe(key)
    size = path.stat().st_size
    if size > _MAX_SINGLE_PUT:
        raise BackupError(f"S3 upload to {where} refused: {size} bytes is more than one PUT allows (5 GiB)")
    md5 = _md5(path)
    client = _client(target)
    try:
        with path.open("rb") as body:
            client.put_object(
                Bucket=target.bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ContentMD5=base64.b64encode(md5).decode("ascii"),
            )
        head = client.head_object(Bucket=target.bucket, Key=key)
    except (BotoCoreError, ClientError) as e:
        raise _failed(f"S3 upload to {where}", e) from None
    remote_size = head.get("ContentLength")
    if remote_size != size:
        raise BackupError(f"S3 upload to {where} not verified: remote size {remote_size}, local size {size}")
    etag = str(head.get("ETag", "")).strip('"')
    # With SSE-KMS (or a multipart object, "-N") the ETag is not the MD5; Content-MD5 was
    # still checked by the server on receipt.
    if head.get("ServerSideEncryption") != "aws:kms" and "-" not in etag and etag != md5.hex():
        raise BackupError(f"S3 upload to {where} not verified: ETag {etag} does not match the local MD5")
    return key


def list_objects(target: S3Target) -> list[tuple[str, int, datetime]]:
    """(key, size, last modified in UTC) of every object directly under the prefix."""
    from botocore.exceptions import BotoCoreError, ClientError

    prefix = f"{target.prefix}/" if target.prefix else ""
    out: list[tuple[str, int, datetime]] = []
    client = _client(target)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=target.bucket, Prefix=prefix, Delimiter="/")
        for page in pages:
            for obj in page.get("Contents", []):
                modified = obj["LastModified"]
                if modified.tzinfo is None:
                    modified = modified.replace(tzinfo=UTC)
                out.append((obj["Key"], int(obj["Size"]), modified.astimezone(UTC)))
    except (BotoCoreError, ClientError) as e:
        raise _failed(f"S3 listing of {target.describe()}", e) from None
    return out


def delete(target: S3Target, key: str) -> None:
    """Remove one object (doctor's probe; backups are never deleted from S3 by pyBursar)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _client(target).delete_object(Bucket=target.bucket, Key=key)
    except (BotoCoreError, ClientError) as e:
        raise _failed(f"S3 delete of {target.describe(key)}", e) from None


def download(target: S3Target, key: str, dest: Path) -> None:
    """Fetch one object to `dest` (`fs.atomic_file`: a 0600 temporary file first, renamed when
    complete and the size matches), so a broken transfer never leaves a half file under the real
    name."""
    from botocore.exceptions import BotoCoreError, ClientError

    where = target.describe(key)
    client = _client(target)
    opened = False
    try:
        with fs.atomic_file(dest, prefix=".pybursar-tmp-", suffix=".download") as f:
            opened = True
            try:
                response = client.get_object(Bucket=target.bucket, Key=key)
                expected = response.get("ContentLength")
                for chunk in response["Body"].iter_chunks(_CHUNK):
                    f.write(chunk)
            except (BotoCoreError, ClientError) as e:
                raise _failed(f"S3 download of {where}", e) from None
            f.flush()
            got = os.fstat(f.fileno()).st_size
            if expected is not None and got != expected:
                raise BackupError(f"S3 download of {where} incomplete: {got} of {expected} bytes")
    except OSError as e:
        what = f"to {dest}" if opened else f"in {dest.parent}"
        raise BackupError(f"cannot write the download of {where} {what}: {e.strerror or e}") from None
