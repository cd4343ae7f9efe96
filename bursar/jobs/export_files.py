"""Which profiles may have written the export files and lines we find (docs/profiles.md, "Reading files back").

A site can change BURSAR_PROFILE at any time; files written under the old profile stay on the
Bursar's server and in EXPORTS_DIR/sent, and stored lines keep the label of the profile that
wrote them (`burs_export_trans.profile`, `burs_sent_lines.profile`).  To recognise those files
and read those lines back, the export remembers the text of every profile it writes with in the
store (meta `profiles`, keyed by the text's sha256), so an old profile is known even after its
file was edited or removed.  The profiles known are, in this order: the current one, the ones
remembered (newest first), then the built-ins.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from bursar import profile as pf
from bursar import profile_read as pr
from bursar.jobs.context import JobContext, log
from bursar.profile import Profile

KEY = "profiles"  # meta: {sha256: {"label", "source", "text"}} in the order first used
LEGACY_LABEL = "pybursar@1"  # lines stored before labels were recorded are the original's line


def _text_of(p: Profile) -> str | None:
    """The TOML text `p` was read from, when the file still holds exactly that profile."""
    try:
        text = Path(p.source).read_text(encoding="utf-8")
        again = pf.loads(text, p.source)
    except (OSError, UnicodeDecodeError, pf.ProfileError):
        return None
    return text if replace(again, preview=p.preview) == p else None


def remember(ctx: JobContext, p: Profile) -> None:
    """Keep the text of a profile files are written (or read) with, once."""
    text = _text_of(p)
    if text is None:
        log.warning("profile %s: %s no longer holds it, so it is not remembered in the store", p.label, p.source)
        return
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()
    known = ctx.store.get_meta(KEY) or {}
    if key in known:
        return
    ctx.store.set_meta(KEY, {**known, key: {"label": p.label, "source": p.source, "text": text}}, now=ctx.utc_now)


def known_profiles(ctx: JobContext) -> list[Profile]:
    """Every profile that may have written a file or line of this site, the current one first."""
    out = [ctx.settings.profile]
    remembered = ctx.store.get_meta(KEY) or {}
    for entry in reversed(list(remembered.values())):
        try:
            out.append(pf.loads(str(entry["text"]), str(entry.get("source") or "<remembered profile>")))
        except (pf.ProfileError, KeyError, TypeError) as exc:
            log.warning("a remembered profile (%s) cannot be read any more: %s", entry.get("label"), exc)
    for path in sorted(pf.BUILTIN_DIR.glob("*.toml")):
        out.append(pf.builtin(path.stem))
    unique: list[Profile] = []
    for p in out:
        if not any(replace(q, source="", preview=False) == replace(p, source="", preview=False) for q in unique):
            unique.append(p)
    return unique


def export_ids(ctx: JobContext, names: Iterable[str]) -> set[int]:
    """The export ids in these file names, under any known profile."""
    return pr.export_ids(known_profiles(ctx), ctx.settings.file_prefix, names)


class Labels:
    """Profile labels ("pybursar@1") to profiles, for reading stored lines back."""

    def __init__(self, ctx: JobContext):
        self._by_label: dict[str, list[Profile]] = {}
        for p in known_profiles(ctx):
            self._by_label.setdefault(p.label, []).append(p)

    def parse(self, text: str, label: str | None, *, credit: bool | None = None,
              summed: bool = False) -> tuple[Profile, pf.LineValues]:
        """A stored line read back with the profile that wrote it (BadLine when none of that
        label reads it); `credit` and `summed` (a patron's line, whose fines are known
        otherwise) as for profile_read.parse_line, when the caller knows."""
        label = label or LEGACY_LABEL
        candidates = self._by_label.get(label)
        if not candidates:
            raise pf.BadLine(f"the line was written with profile {label}, which is not known here")
        errors = []
        for p in candidates:
            try:
                return p, pr.parse_line(p, text, credit=credit, summed=summed)
            except pf.BadLine as exc:
                errors.append(str(exc))
        raise pf.BadLine("; ".join(errors))
