"""ADAPTER SMOKE TEST (mongomock is not MongoDB): Direction 1 over the three sandbox days on the
MongoDB engine, in process, must send byte for byte the same files as on SQLite.

mongomock cannot be reached from an `abs.py` subprocess, so the jobs run in this process with
the same settings the subprocess tests use.  With BURSAR_TEST_MONGODB_URI set, the same run also
goes against a real mongod.
"""

from __future__ import annotations

import pytest

from bursar import settings as settings_mod
from bursar.jobs import export, import_fines, send
from bursar.jobs.context import JobContext
from bursar.store.mongo import MongoStore

from .mongo import ENGINES, mongo_target
from .test_direction1 import GOLDEN


@pytest.mark.parametrize("engine", ENGINES)
def test_three_days_on_mongodb_match_the_golden_files(sandbox, engine):
    with mongo_target(engine) as (uri, client):
        for index in range(len(sandbox.worlds)):
            world = sandbox.install(index)
            env = {**sandbox.env, "BURSAR_NOW": f"{world.day.isoformat()}T18:00:00"}
            settings = settings_mod.load(env, cwd=sandbox.work)
            for step in (import_fines.run, export.run, send.run):
                store = MongoStore(uri, client=client)
                ctx = JobContext(settings=settings, store=store, now=settings.now())
                try:
                    summary = step(ctx)
                finally:
                    ctx.close()
                assert summary.exit_code in (0, 3), summary.render()
        expected = {p.name: p.read_bytes() for p in sorted(GOLDEN.glob("LIB_charges.dat.*"))}
        assert sandbox.uploaded() == expected
