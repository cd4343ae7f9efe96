"""Switching over in place: a MongoDB database exactly as the original pyBursar left it.

ADAPTER SMOKE TEST on mongomock (mongomock is not MongoDB); the same run goes against a real
mongod when BURSAR_TEST_MONGODB_URI is set.  The database holds doubles for money, no `state`
fields, one sent export (40) and one written but never sent (41), whose file waits in the
exports folder.  Our import, export and upload must carry on: the unsent export is sent exactly
once, export ids go on above the original's, and nothing it billed is billed again.
"""

from __future__ import annotations

from datetime import date, datetime

import mongomock
import pytest

from bursar import settings as settings_mod
from bursar.jobs import export, import_fines, send
from bursar.jobs.context import JobContext
from bursar.rules import bursar_file as bf
from bursar.store.mongo import MongoStore

from .mongo import ENGINES, mongo_target

T = datetime(2026, 2, 27, 14, 0, 0)
BILLED, UNSENT = "9990000000000007", "9990000000000008"
UNSENT_NAME = "LIB_charges.dat.20260228.41.1"


def legacy_line(ref: str, amount: str) -> str:
    return bf.format_line(bf.LineFields("1000000001", "531000000002", bf.to_money(amount), date(2026, 3, 25),
                                        date(2026, 2, 28), "2261", ref))


def seed_original_database(db) -> None:
    """Documents shaped as the original writes them (docs/ledger.md §2)."""
    db.patrons.insert_one({"id": 1, "almaPatronId": "1000000001", "balance": 15.6, "created": T, "updated": T})
    for n, (ref, amount, md_id, tb_id) in enumerate(((BILLED, 12.5, 31, 21), (UNSENT, 3.1, 32, 22)), start=7):
        db.fines.insert_one({"id": n, "patron": 1, "almaPatronId": "1000000001", "rootAlmaFineId": ref,
                             "almaLoanId": "\\N", "isSierraFine": False, "almaCreated": T, "almaUpdated": T,
                             "type": "Overdue fine", "origAmtAlma": amount, "remAmtAlma": amount,
                             "isClosedInAlma": False, "almaNote": None, "created": T, "updated": T})
        db.trans_alma.insert_one({"id": n + 4, "fine": n, "almaFineId": ref, "almaTransId": None,
                                  "almaCreated": "2026-02-27T14:00:00", "type": "Fine", "amt": amount,
                                  "almaNote": None, "newAlmaImp": False, "created": T, "updated": T})
        db.trans_burs.insert_one({"id": tb_id, "fine": n, "bursFineId": ref, "bursTransId": None, "bursCreated": None,
                                  "type": "Fine", "amt": amount, "newBursImp": False, "newBursExp": False,
                                  "created": T, "updated": T})
        db.fine_mds.insert_one({"id": md_id, "fine": n, "bursFineId": ref, "alma_fine_id": ref, "isReplFee": False,
                                "chargeAcc": "531000000002", "billingDate": T, "fineDueDate": datetime(2026, 3, 25),
                                "termCode": "2261", "sierra_item_detail": None, "updated": T})
    db.burs_exports.insert_many([
        {"id": 40, "chargesFilename": "LIB_charges.dat.20260227.40.1", "reversalsFilename": None, "numSent": 1,
         "sent_to_bursar": T, "created": T, "updated": T, "exported_fines": []},
        {"id": 41, "chargesFilename": UNSENT_NAME, "reversalsFilename": None, "numSent": 1,
         "sent_to_bursar": None, "created": T, "updated": T},
    ])
    db.burs_export_trans.insert_many([
        {"id": 51, "transBurs": 21, "bursExport": 40, "bursFineMd": 31, "sent": None, "arrived": None,
         "created": T, "updated": T},
        {"id": 52, "transBurs": 22, "bursExport": 41, "bursFineMd": 32, "sent": None, "arrived": None,
         "created": T, "updated": T},
    ])
    db.jobs.insert_one({"id": 61, "type": "BursExport", "status": "Success", "scheduled": T, "started": T,
                        "finished": T, "created": T, "updated": T})


@pytest.mark.parametrize("engine", ENGINES)
def test_the_original_database_carries_on_and_its_unsent_export_is_sent_once(sandbox, engine):
    with mongo_target(engine) as (uri, client):
        db = client[uri.rsplit("/", 1)[1]]
        seed_original_database(db)
        sandbox.exports_dir.mkdir(parents=True)
        unsent = legacy_line(UNSENT, "3.10") + "\n"
        (sandbox.exports_dir / UNSENT_NAME).write_text(unsent)

        def step(run, day: date):
            env = {**sandbox.env, "BURSAR_NOW": f"{day.isoformat()}T18:00:00"}
            settings = settings_mod.load(env, cwd=sandbox.work)
            ctx = JobContext(settings=settings, store=MongoStore(uri, client=client), now=settings.now())
            try:
                summary = run(ctx)
            finally:
                ctx.close()
            assert summary.exit_code in (0, 3), summary.render()
            return summary

        day = sandbox.install(0).day
        for run in (import_fines.run, export.run, send.run):
            step(run, day)
        uploaded = sandbox.uploaded()
        assert uploaded[UNSENT_NAME] == unsent.encode()  # the original's unsent export, sent as it was written
        assert not any(".40." in name for name in uploaded)  # the sent one is left alone
        ours = sorted(n for n in uploaded if n != UNSENT_NAME)
        assert ours and all(bf.parse_file_name("LIB_charges.dat", n).export_id == 42 for n in ours)
        lines = [line for data in uploaded.values() for line in data.decode().splitlines()]
        assert [bf.parse_line(line).reference for line in lines].count(UNSENT) == 1
        assert BILLED not in {bf.parse_line(line).reference for line in lines}
        legacy = db.burs_exports.find_one({"id": 41})
        assert legacy["sent_to_bursar"] is not None and legacy["state"] == "sent"
        assert not (sandbox.exports_dir / UNSENT_NAME).exists()  # archived after delivery

        # the next day's run sends nothing of the original's again
        second = step(send.run, sandbox.install(1).day)
        assert "no written export waiting" in second.render()
        assert sandbox.uploaded() == uploaded


def test_an_unsent_export_of_the_original_without_its_files_is_reported(sandbox):
    client = mongomock.MongoClient()  # ADAPTER SMOKE TEST
    uri = "mongodb://localhost:27017/almabursar"
    seed_original_database(client["almabursar"])
    settings = settings_mod.load({**sandbox.env, "BURSAR_NOW": "2026-03-02T18:00:00"}, cwd=sandbox.work)
    ctx = JobContext(settings=settings, store=MongoStore(uri, client=client), now=settings.now())
    try:
        summary = send.run(ctx)
    finally:
        ctx.close()
    assert summary.exit_code == 3
    assert any(UNSENT_NAME in line and "not found" in line for line in summary.render().splitlines())
    assert sandbox.uploaded() == {}
    assert client["almabursar"].burs_exports.find_one({"id": 41})["sent_to_bursar"] is None
