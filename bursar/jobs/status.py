"""`status`: what a person wants to know on a Monday morning, read-only and fast.

Everything comes from the store (a handful of indexed look-ups), the backups folder and the lock
file; no server is called, so it answers in well under a second and is safe to run at any time,
also while a run is going.  It never creates a store: without one it says so and exits 2.

The command runs themselves are recorded by `record_run` (the CLI calls it when a mutating
command ends): one document per run in the `jobs` collection, with `type` the command's name
(`today`, `payFines`, ...; the original's own job types are `AlmaImport`, `BursExport`,
`BursarPayments`, which the steps keep writing), the outcome, the exit code and the items that
needed attention.  `status` reads the newest of each.

Its output may end up in a monitoring tool (`--json`), so messages are scrubbed as for Slack: no
Emplids, no raw API bodies; payment rows are named by reference number, file and line.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bursar.clients.notify import scrub
from bursar.runtime.summary import Summary
from bursar.store import DbTarget, Store, find_store, no_store

if TYPE_CHECKING:
    from bursar.settings import Settings

# The commands `status` reports on, in the order it lists them.
COMMANDS = ("today", "payFines", "importAlmaFines", "exportBurs", "sftpToBurs", "importAlmaPayments",
            "backupDB", "restoreLast", "restoreChoose")
# The job type each step writes itself (also when it runs inside today/payFines).
STEP_JOBS = {"importAlmaFines": "AlmaImport", "exportBurs": "BursExport", "sftpToBurs": "BursarSend",
             "importAlmaPayments": "BursarPayments"}
CHAINS = ("today", "payFines")
# What each command covers: a later run that covers all of an earlier run's steps settles the
# items the earlier one reported (they are reported again if they still need a person).
_COVERS = {"today": {"I", "E", "S", "P", "B"}, "payFines": {"P", "B"}, "importAlmaFines": {"I"},
           "exportBurs": {"E"}, "sftpToBurs": {"S"}, "importAlmaPayments": {"P"}, "backupDB": {"B"},
           "restoreLast": {"R"}, "restoreChoose": {"R"}}
# migrate copies the store and checks the copy against it: a record written into the source
# after the copy would make the two differ.
NOT_RECORDED = frozenset({"migrate"})
MAX_ITEMS_KEPT = 200  # attention items kept per recorded run
SHOWN = 20  # list lines shown in the text form (--json has them all)


# -- recording a run (called by the CLI) ---------------------------------------------------------


def record_run(settings: Settings, command: str, *, started: datetime, finished: datetime, exit_code: int,
               error: str | None = None, summary: Summary | None = None) -> str | None:
    """Record a finished (or failed) run of a mutating command in `jobs`; None when recorded or
    when there is nothing to record into, else a one-line warning.  Never raises: a run's record
    is for `status`, never a reason to fail the run.  Never creates a store."""
    if command in NOT_RECORDED:
        return None
    try:
        store = find_store(settings.db, money=settings.get("BURSAR_MONGO_MONEY") or "auto")
    except Exception:  # noqa: BLE001 - a store that cannot be opened: the run's own error says why
        return None
    if store is None:
        return None
    try:
        store.insert("jobs", run_document(command, started=started, finished=finished, exit_code=exit_code,
                                          error=error, summary=summary))
    except Exception as exc:  # noqa: BLE001
        return f"this run was not recorded for 'status': {exc}"
    finally:
        store.close()
    return None


def run_document(command: str, *, started: datetime, finished: datetime, exit_code: int,
                 error: str | None, summary: Summary | None) -> dict[str, Any]:
    start, end = _utc(started), _utc(finished)
    info: dict[str, Any] = {"exitCode": exit_code}
    if summary is not None:
        info["counts"] = dict(summary.counts)
        info["totals"] = {k: str(v) for k, v in summary.totals.items()}
        info["attention"] = len(summary.attention)
        info["attentionItems"] = [{"ref": a.ref, "message": a.message} for a in summary.attention[:MAX_ITEMS_KEPT]]
    doc: dict[str, Any] = {"type": command, "status": "Success" if exit_code in (0, 3) else "Failed",
                           "scheduled": start, "started": start, "finished": end, "created": start,
                           "updated": end, "summary": info}
    if error:
        doc["errorMsg"] = error
    return doc


# -- the report ------------------------------------------------------------------------------------


def status(settings: Settings, *, as_json: bool = False) -> str:
    """The status report (text, or JSON with the same content)."""
    store = find_store(settings.db, money=settings.get("BURSAR_MONGO_MONEY") or "auto")
    if store is None:
        raise no_store(settings.db)
    try:
        report = gather(settings, store, settings.now())
    finally:
        store.close()
    return json.dumps(report, indent=2, default=str) if as_json else render(report)


def gather(settings: Settings, store: Store, now: datetime) -> dict[str, Any]:
    from bursar.backup import list_backups
    from bursar.runtime.lock import lock_holder

    tz = settings.timezone
    warnings: list[str] = []
    records = {name: store.find_one("jobs", {"type": name}, order_by="id", descending=True) for name in COMMANDS}
    chains = [r for name in CHAINS if (r := records[name]) is not None]
    commands = []
    for name in COMMANDS:
        record, via = records[name], None
        step = store.find_one("jobs", {"type": STEP_JOBS[name]}, order_by="id", descending=True) \
            if name in STEP_JOBS else None
        if step is not None and (record is None or _started(step) > _started(record)):
            record = step
            via = next((c["type"] for c in chains if _started(c) <= _started(step) <= (_finished(c) or _started(c))),
                       None)
        commands.append(_run_entry(name, record, via, tz))

    last_ok = store.find_one("jobs", {"type": "today", "status": "Success"}, order_by="id", descending=True)
    stale_days = settings.status_stale_days
    today: dict[str, Any] = {"last_success": None, "age_days": None, "stale_after_days": stale_days, "stale": True}
    last_ok_at = _finished(last_ok) if last_ok is not None else None
    if last_ok_at is not None:
        age = now - last_ok_at.replace(tzinfo=UTC)
        today.update(last_success=_local(last_ok_at, tz), age_days=round(age.total_seconds() / 86400, 2),
                     stale=age > timedelta(days=stale_days))
        if today["stale"]:
            warnings.append(f"today has not succeeded for {_age(age)} (more than STATUS_STALE_DAYS={stale_days})")
    else:
        warnings.append("today has not succeeded yet (or not since pyBursar began recording its runs)")

    unsent = list(store.find("burs_exports", {"state": "written"}))
    unsent += [e for e in store.find("burs_exports", {"state": None, "sent_to_bursar": None})
               if e.get("chargesFilename") or e.get("reversalsFilename")]
    exports = [{"id": e["id"], "files": [n for n in (e.get("chargesFilename"), e.get("reversalsFilename")) if n],
                "written": _local(e.get("created"), tz)} for e in sorted(unsent, key=lambda e: e["id"])]
    if exports:
        warnings.append(f"{len(exports)} export(s) written but not sent to the Bursar")

    payments: dict[str, Any] = {"pending": store.count("burs_payments", {"state": "pending"}),
                                "failed": store.count("burs_payments", {"state": "failed"}), "rows": []}
    for row in store.find("burs_payments", {"state": ["pending", "failed"]}, order_by="id"):
        payments["rows"].append({"state": row["state"], "reference": row.get("referenceNumber"),
                                 "file": row.get("fileName"), "line": row.get("lineNumber"),
                                 "reason": scrub(row["reason"]) if row.get("reason") else None})

    attention = _open_attention([r for r in records.values() if r is not None], tz)

    backups = list_backups(settings.backups_dir)  # local only: status never waits on S3
    backup: dict[str, Any] = {"newest": None, "created": None, "age_days": None, "location": None}
    if backups:
        newest = backups[0]
        age = now - newest.created
        backup = {"newest": newest.name, "created": _local(newest.created, tz),
                  "age_days": round(age.total_seconds() / 86400, 2), "location": str(newest.path.parent)}
    else:
        warnings.append(f"no backup in {settings.backups_dir}")

    return {
        "generated": now.isoformat(timespec="seconds"),
        "database": {"location": settings.db.location, "engine": store.engine,
                     "size_bytes": database_size(settings.db, store)},
        "running": lock_holder(settings.lock_file),
        "commands": commands,
        "today": today,
        "unsent_exports": exports,
        "payments": payments,
        "attention": attention,
        "backup": backup,
        "warnings": warnings,
    }


def database_size(target: DbTarget, store: Store) -> int | None:
    """Bytes on disk: the SQLite file with its WAL; MongoDB's storage size from dbStats."""
    if target.path is not None:
        path = target.path
        return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.is_file())
    db = getattr(store, "_db", None)  # the engine's database handle: dbStats has no Store method
    try:
        stats = db.command("dbStats") if db is not None else None
    except Exception:  # noqa: BLE001 - the size is a nicety; the rest of the report stands
        return None
    return int(stats.get("storageSize", 0)) + int(stats.get("indexSize", 0)) if stats else None


def render(report: dict[str, Any]) -> str:
    db = report["database"]
    size = f", {_bytes(db['size_bytes'])}" if db["size_bytes"] is not None else ""
    lines = [f"pyBursar status at {report['generated']}",
             f"  database: {db['location']} ({'SQLite' if db['engine'] == 'sqlite' else 'MongoDB'}{size})"]
    if report["running"]:
        lines.append(f"  running now: {report['running']}")
    lines += ["", "Last run of each command:"]
    width = max(len(c["command"]) for c in report["commands"])
    for c in report["commands"]:
        if c["when"] is None:
            alone = " on its own (today and payFines end with one)" if c["command"] == "backupDB" else ""
            lines.append(f"  {c['command']:<{width}}  never{alone}")
            continue
        code = f"exit {c['exit_code']}" if c["exit_code"] is not None else "exit ?"
        extra = f" (in {c['via']})" if c["via"] else ""
        took = f", took {_age(timedelta(seconds=c['seconds']))}" if c["seconds"] else ""
        outcome = c["outcome"] + (f": {_short(c['error'])}" if c["error"] else "")
        lines.append(f"  {c['command']:<{width}}  {c['when'][:16].replace('T', ' ')}  {code}  {outcome}{extra}{took}")
    today = report["today"]
    lines.append("")
    if today["last_success"]:
        age = timedelta(days=today["age_days"])
        lines.append(f"today last succeeded {_age(age)} ago ({today['last_success'][:16].replace('T', ' ')}); "
                     f"status warns after {today['stale_after_days']} days")
    else:
        lines.append("today has not succeeded yet")
    exports = report["unsent_exports"]
    lines.append(f"Exports written but not sent: {len(exports) or 'none'}")
    lines += [f"  - export {e['id']}: {', '.join(e['files'])} (written {str(e['written'])[:16].replace('T', ' ')})"
              for e in exports[:SHOWN]]
    pay = report["payments"]
    lines.append(f"Payment rows pending: {pay['pending']}, failed: {pay['failed']}")
    lines += [f"  - {r['state']}: {r['reference']} ({r['file']} line {r['line']}): {_short(r['reason'] or '')}"
              for r in pay["rows"][:SHOWN]]
    attention = report["attention"]
    lines.append(f"Attention items still open (reported by the latest runs): {len(attention) or 'none'}")
    lines += [f"  - {a['ref']}: {_short(a['message'])} ({a['command']}, {a['when'][:10]})" for a in attention[:SHOWN]]
    hidden = max(len(attention) - SHOWN, 0) + max(len(pay["rows"]) - SHOWN, 0) + max(len(exports) - SHOWN, 0)
    if hidden:
        lines.append(f"  ... and {hidden} more (status --json lists them all)")
    backup = report["backup"]
    if backup["newest"]:
        lines.append(f"Newest backup: {backup['newest']} in {backup['location']}, "
                     f"{_age(timedelta(days=backup['age_days']))} old")
    else:
        lines.append("Newest backup: none")
    if report["warnings"]:
        lines.append("")
        lines += [f"WARNING: {w}" for w in report["warnings"]]
    return "\n".join(lines)


# -- helpers ---------------------------------------------------------------------------------------


def _run_entry(name: str, record: dict | None, via: str | None, tz: tzinfo) -> dict[str, Any]:
    entry: dict[str, Any] = {"command": name, "when": None, "outcome": None, "exit_code": None, "error": None,
                             "via": via, "seconds": None}
    if record is None:
        return entry
    info: dict[str, Any] = record["summary"] if isinstance(record.get("summary"), dict) else {}
    code = info.get("exitCode")
    error = record.get("errorMsg")
    if record["status"] == "In Progress":
        outcome = "running (or killed)"
    elif record["status"] == "Failed":
        outcome = "interrupted" if (error or "").startswith("interrupted") else "failed"
        code = 1 if code is None else code
    else:
        attention = info.get("attention")
        code = (3 if attention else 0) if code is None else code
        outcome = "needs attention" if code == 3 else "ok"
    started, finished = _started(record), _finished(record)
    entry.update(when=_local(started, tz), outcome=outcome, exit_code=code,
                 error=None if outcome == "interrupted" or not error else scrub(error),
                 seconds=int((finished - started).total_seconds()) if finished and started else None)
    return entry


def _open_attention(records: list[dict], tz: tzinfo) -> list[dict[str, Any]]:
    newest_first = sorted(records, key=lambda r: r["id"], reverse=True)
    out: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for i, record in enumerate(newest_first):
        covers = _COVERS.get(record["type"], set())
        if any(covers <= _COVERS.get(newer["type"], set()) for newer in newest_first[:i]):
            continue  # a later run went over the same steps and reported what is still open
        info: dict[str, Any] = record["summary"] if isinstance(record.get("summary"), dict) else {}
        for item in info.get("attentionItems") or []:
            key = (str(item.get("ref")), str(item.get("message")))
            if key not in seen:
                seen.add(key)
                out.append({"ref": scrub(key[0]), "message": scrub(key[1]), "command": record["type"],
                            "when": _local(_started(record), tz)})
    return out


def _started(record: dict) -> datetime:
    value = record.get("started") or record.get("created")
    return value if isinstance(value, datetime) else datetime.min


def _finished(record: dict) -> datetime | None:
    value = record.get("finished")
    return value if isinstance(value, datetime) else None


def _utc(when: datetime) -> datetime:
    """The store's stamp: UTC, naive, whole seconds (as the jobs' own fields)."""
    aware = when if when.tzinfo is not None else when.astimezone()
    return aware.astimezone(UTC).replace(tzinfo=None, microsecond=0)


def _local(value: Any, tz: tzinfo) -> str | None:
    if not isinstance(value, datetime) or value == datetime.min:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return aware.astimezone(tz).isoformat(timespec="seconds")


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} minutes"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} hours"
    return f"{hours // 24} days {hours % 24} hours"


def _bytes(n: int) -> str:
    if n < 1000:
        return f"{n:,} bytes"
    for unit, scale in (("kB", 10**3), ("MB", 10**6)):
        if n < scale * 1000:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 10**9:,.1f} GB"


def _short(text: str, limit: int = 160) -> str:
    one = " ".join(str(text).split())
    return one if len(one) <= limit else one[: limit - 3] + "..."
