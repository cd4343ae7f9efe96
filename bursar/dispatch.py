"""What the CLI decides once per command and hands down: the clock, the effects, the store.

- `now` is read once, so every step of `today`, the lock, the backup and every stamp agree.
- The effects are real or a dry run (bursar.effects), chosen here and nowhere else.
- The store is opened once per command and shared by every step (a dry run wraps it in one
  OverlayStore, so each step of a chained dry run sees the steps before).  Only the commands
  that start a site's ledger (`importAlmaFines`, `today`) may create a store; the others refuse
  a missing one; a dry run with no store runs against an empty one in memory and creates
  nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from bursar.effects import DryRunEffects, Effects
from bursar.jobs.context import JobContext
from bursar.settings import Settings
from bursar.store import Store, find_store, no_store, open_store

CREATES_STORE = frozenset({"importAlmaFines", "today"})


@dataclass
class Dispatch:
    settings: Settings
    command: str
    now: datetime
    effects: Effects
    accept_restore_gap: bool = False
    notices: list[str] = field(default_factory=list)  # first lines of the output (a new store...)

    @classmethod
    def make(cls, settings: Settings, command: str, *, dry_run: bool, accept_restore_gap: bool = False) -> Dispatch:
        return cls(settings, command, settings.now(), DryRunEffects() if dry_run else Effects(),
                   accept_restore_gap)

    @property
    def dry_run(self) -> bool:
        return self.effects.dry_run

    def open_store(self) -> Store:
        s = self.settings
        money = s.get("BURSAR_MONGO_MONEY") or "auto"
        store = find_store(s.db, money=money)
        if store is None:
            where = s.db.location
            if self.dry_run:
                from bursar.store.overlay import EmptyStore

                self.notices.append(f"no pyBursar database at {where}: showing what a first run would do")
                store = EmptyStore()  # type: ignore[assignment]
            elif self.command in CREATES_STORE:
                self.notices.append(f"no pyBursar database at {where}: starting a new one")
                store = open_store(s.db, money=money)
            else:
                raise no_store(s.db)
        if self.dry_run:
            from bursar.store.overlay import OverlayStore

            store = OverlayStore(store)  # type: ignore[arg-type]
        assert store is not None
        return store

    def context(self) -> JobContext:
        """The one job context of this command (the caller closes it)."""
        from bursar.jobs import rollforward

        ctx = JobContext(settings=self.settings, store=self.open_store(), now=self.now, effects=self.effects)
        try:
            rollforward.check(ctx, accept=self.accept_restore_gap)
        except BaseException:
            ctx.close()
            raise
        return ctx

    def close(self) -> None:
        self.effects.close()
