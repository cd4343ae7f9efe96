"""sftpToBurs: Direction 1, step 3.  Upload every written-but-unsent export, oldest first.

Each file goes to BURSAR_SFTP_DIR under a temporary name, is renamed, and its remote size is
checked against the local file.  Only then is the fact recorded (per file), the files archived
to EXPORTS_DIR/sent, and the export marked `sent`.  After a crash or a dropped connection the
export is still `written`; the next run skips a file the server already has in full (recorded,
or present with the same size), so nothing is sent twice and nothing is lost.
"""

from __future__ import annotations

import os
from pathlib import Path

from .. import crash, fs, sftp
from ..errors import BursarError
from ..summary import Summary
from .context import JobContext, finish_job, log, sftp_endpoint, start_job

ARCHIVE = "sent"
_FILES = (("chargesFilename", "chargesSent"), ("reversalsFilename", "reversalsSent"))


def local_file(ctx: JobContext, name: str) -> Path | None:
    """Where an export file is now: the exports folder, or its archive after upload."""
    for folder in (ctx.settings.exports_dir, ctx.settings.exports_dir / ARCHIVE):
        if (folder / name).is_file():
            return folder / name
    return None


def run(ctx: JobContext) -> Summary:
    summary = Summary("sftpToBurs", dry_run=ctx.dry_run)
    exports = list(ctx.store.find("burs_exports", {"state": "written"}))
    if not exports:
        summary.note("no written export waiting to be sent")
        return summary
    if ctx.dry_run:
        for export in exports:
            for name_field, sent_field in _FILES:
                name = export[name_field]
                if name and not export[sent_field]:
                    path = local_file(ctx, name)
                    size = path.stat().st_size if path else "missing"
                    summary.note(f"would upload export {export['id']}: {name} ({size} bytes) "
                                 f"to {ctx.settings.bursar_sftp.directory}")
            summary.count("exports to send", 1)
        return summary
    target = sftp_endpoint(ctx, "bursar_sftp")
    job = start_job(ctx, "BursarSend")
    try:
        with sftp.connect(target) as session:
            for export in exports:
                _send_export(ctx, session, export, summary)
    except BursarError as exc:
        finish_job(ctx, job, error=str(exc))
        raise
    finish_job(ctx, job, summary={"counts": summary.counts})
    return summary


def _send_export(ctx: JobContext, session: sftp.SftpSession, export: dict, summary: Summary) -> None:
    store = ctx.store
    for name_field, sent_field in _FILES:
        name = export[name_field]
        if not name or export[sent_field]:
            continue
        path = local_file(ctx, name)
        if path is None:
            raise BursarError(f"export {export['id']}: file {name} is missing from {ctx.settings.exports_dir}; "
                              "run exportBurs to rewrite it")
        size = path.stat().st_size
        if session.size(name) == size:
            log.info("%s is already on the server with the right size; not sending it again", name)
            summary.note(f"{name} was already on the server (not sent again)")
        else:
            session.upload_verified(path, name)
            crash.point("send.after_upload")
            summary.note(f"uploaded {name} ({size} bytes)")
        store.update("burs_exports", export["id"], {sent_field: ctx.utc_now, "updated": ctx.utc_now})
    crash.point("send.before_archive")
    archive = ctx.settings.exports_dir / ARCHIVE
    fs.ensure_dir(archive, f"EXPORTS_DIR/{ARCHIVE}")
    for name_field, _ in _FILES:
        name = export[name_field]
        if name and (ctx.settings.exports_dir / name).is_file():
            os.replace(ctx.settings.exports_dir / name, archive / name)
    crash.point("send.before_mark_sent")
    stamp = ctx.utc_now
    store.update("burs_exports", export["id"], {"state": "sent", "sent_to_bursar": stamp, "updated": stamp})
    summary.count("exports sent", 1)
    summary.count("lines sent", export["numSent"] or 0)


