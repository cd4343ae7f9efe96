"""sftpToBurs: Direction 1, step 3.  Upload every written-but-unsent export, oldest first.

Each file goes to BURSAR_SFTP_DIR under a temporary name, is renamed, and is read back and
compared with the local file (sha256).  Only then is the fact recorded (per file), the files
archived to EXPORTS_DIR/sent, and the export marked `sent`.  After a crash or a dropped
connection the export is still `written`; the next run counts a file as delivered only when the
server holds exactly the same bytes.  A same-name file with other content is never overwritten
and never counted as delivered: the run stops and names both files.

Exports the original pyBursar wrote but never sent (no `state`, no sent date) are picked up
too, so a site that switches over mid-cycle loses nothing.  Every export id found in the upload
folder's listing raises the store's id counter, so a later export never reuses a name the
Bursar already has: names are recognised under every profile the site has written with
(bursar.jobs.export_files), so a change of profile does not hide them.
"""

from __future__ import annotations

from pathlib import Path

from bursar.clients import sftp
from bursar.errors import BursarError, SftpError
from bursar.jobs.context import JobContext, log, recorded, sftp_endpoint
from bursar.jobs.export_files import export_ids
from bursar.runtime import crash
from bursar.runtime.summary import Summary

ARCHIVE = "sent"
_FILES = (("chargesFilename", "chargesSent"), ("reversalsFilename", "reversalsSent"))


def local_file(ctx: JobContext, name: str) -> Path | None:
    """Where an export file is now: the exports folder, or its archive after upload."""
    for folder in (ctx.settings.exports_dir, ctx.settings.exports_dir / ARCHIVE):
        found = ctx.effects.locate(folder / name)
        if found is not None:
            return found
    return None


def local_export_ids(ctx: JobContext) -> set[int]:
    """The export ids in the names of the files in the exports folder and its archive."""
    names = []
    for folder in (ctx.settings.exports_dir, ctx.settings.exports_dir / ARCHIVE):
        if folder.is_dir():
            names += [p.name for p in folder.iterdir()]
    return export_ids(ctx, names)


def unsent_exports(ctx: JobContext) -> list[dict]:
    """Exports waiting for upload, oldest first: ours in state `written`, and the original's
    written but unsent ones (no state, no sent date, at least one file name)."""
    store = ctx.store
    written = list(store.find("burs_exports", {"state": "written"}))
    legacy = [e for e in store.find("burs_exports", {"state": None, "sent_to_bursar": None})
              if e["chargesFilename"] or e["reversalsFilename"]]
    return sorted(written + legacy, key=lambda e: e["id"])


def _files(export: dict) -> list[tuple[str, str]]:
    """(file name, sent field) of the export's files not yet verified on the server."""
    return [(export[n], sent) for n, sent in _FILES if export[n] and not export[sent]]


def run(ctx: JobContext) -> Summary:
    summary = ctx.effects.summary("sftpToBurs")
    exports = unsent_exports(ctx)
    if not exports:
        summary.note("no written export waiting to be sent")
        return summary
    target = sftp_endpoint(ctx, "bursar_sftp")
    with recorded(ctx, "BursarSend", summary), sftp.connect(target) as session:
        on_server = {f.name for f in session.listdir()}
        # never hand out an export id the Bursar has already seen
        ctx.store.raise_ids("burs_exports", max(export_ids(ctx, on_server), default=0))
        for export in exports:
            _send_export(ctx, session, export, on_server, summary)
    return summary


def _send_export(ctx: JobContext, session: sftp.SftpSession, export: dict, on_server: set[str],
                 summary: Summary) -> None:
    store = ctx.store
    legacy = export["state"] is None
    files = _files(export)
    missing = [name for name, _ in files if local_file(ctx, name) is None]
    if missing and legacy:
        summary.flag(f"export {export['id']} (written by the original pyBursar, never sent)",
                     f"{', '.join(missing)} not found in {ctx.settings.exports_dir}; copy the files there "
                     "and run sftpToBurs again")
        return
    if missing:
        raise BursarError(f"export {export['id']}: file {missing[0]} is missing from {ctx.settings.exports_dir}; "
                          "run exportBurs to rewrite it")
    for name, sent_field in files:
        path = local_file(ctx, name)
        assert path is not None  # checked above
        if name in on_server and _already_delivered(session, export, path, name):
            log.info("%s is already on the server with the same content; not sending it again", name)
            summary.note(f"{name} was already on the server with the same content (not sent again)")
        else:
            size = ctx.effects.upload(session, path, name)
            crash.point("send.after_upload")
            ctx.effects.done(summary, f"uploaded {name} ({size} bytes, content verified)")
        store.update("burs_exports", export["id"], {sent_field: ctx.utc_now, "updated": ctx.utc_now})
    crash.point("send.before_archive")
    archive = ctx.effects.ensure_dir(ctx.settings.exports_dir / ARCHIVE, f"EXPORTS_DIR/{ARCHIVE}")
    for name_field, _ in _FILES:
        name = export[name_field]
        if name and ctx.effects.locate(ctx.settings.exports_dir / name) is not None:
            ctx.effects.move(ctx.settings.exports_dir / name, archive / name)
    crash.point("send.before_mark_sent")
    stamp = ctx.utc_now
    store.update("burs_exports", export["id"], {"state": "sent", "sent_to_bursar": stamp, "updated": stamp})
    summary.count("exports sent", 1)
    summary.count("lines sent", export["numSent"] or 0)
    if legacy:
        summary.note(f"export {export['id']} was written by the original pyBursar and is now sent")


def _already_delivered(session: sftp.SftpSession, export: dict, path: Path, name: str) -> bool:
    """A same-name file on the server counts as delivered only with identical content; any
    other content stops the run (it is never overwritten)."""
    remote = session.sha256(name)
    if remote is None:  # gone since the listing
        return False
    local = sftp.file_sha256(path)
    if remote == local:
        return True
    remote_size = session.size(name)
    raise SftpError(
        f"export {export['id']}: {name} is already on the Bursar's server with other content "
        f"(server: {remote_size} bytes, sha256 {remote}; ours, {path}: {path.stat().st_size} bytes, "
        f"sha256 {local}); it was not overwritten and the export is not marked sent. Ask the Bursar's "
        "office which file they have before running sftpToBurs again")
