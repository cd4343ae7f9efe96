"""The store's entities, shared by both engines.

Collection and field names are the original pyBursar's (MongoDB database `almabursar`), so an
existing database keeps working in place.  New collections and fields are marked "new".
Every document has an integer `id` (from an atomic counter) that all relations use.

Field types:
- STR, INT, BOOL: as named.
- MONEY: `decimal.Decimal` with two places.  SQLite stores integer cents; MongoDB stores
  Decimal128 (doubles found in an old pyBursar database are read and rounded to cents).
- DATETIME: naive `datetime.datetime` (UTC for created/updated/job stamps; the institution's
  local time for Alma dates and Bursar billing/due dates).  Legacy Mongo strings are parsed.
- JSON: a small JSON-serialisable value (dict/list); stored as TEXT in SQLite.
"""

STR = "str"
INT = "int"
BOOL = "bool"
MONEY = "money"
DATETIME = "datetime"
JSON = "json"

# collection -> {field: type}; `id` (INT) is implicit in every collection.
COLLECTIONS: dict[str, dict[str, str]] = {
    "patrons": {
        "almaPatronId": STR,
        "balance": MONEY,
        "created": DATETIME,
        "updated": DATETIME,
    },
    "fines": {
        "patron": INT,
        "almaPatronId": STR,
        "rootAlmaFineId": STR,
        "almaLoanId": STR,  # the literal "\\N" when the fine has no loan, as in the original
        "isSierraFine": BOOL,
        "almaCreated": DATETIME,
        "almaUpdated": DATETIME,
        "type": STR,
        "origAmtAlma": MONEY,
        "remAmtAlma": MONEY,
        "isClosedInAlma": BOOL,
        "almaNote": STR,
        "created": DATETIME,
        "updated": DATETIME,
    },
    "item_details": {
        "fine": INT,
        "title": STR,
        "author": STR,
        "callNumber": STR,
        "barcode": STR,
        "loanDate": DATETIME,
        "dueDate": DATETIME,
        "returnedDate": DATETIME,
        "locationCode": STR,
        "userGroup": STR,  # new: the patron's Alma user group, when the fines report has the column
        "created": DATETIME,
        "updated": DATETIME,
    },
    "trans_alma": {
        "fine": INT,
        "almaFineId": STR,
        "almaTransId": STR,
        "almaCreated": DATETIME,
        "type": STR,  # Fine | Payment | Waive | Credit
        "amt": MONEY,  # + for Fine, - for the others
        "almaNote": STR,
        "newAlmaImp": BOOL,
        "created": DATETIME,
        "updated": DATETIME,
    },
    "trans_burs": {
        "fine": INT,
        "bursFineId": STR,
        "bursTransId": STR,
        "bursCreated": DATETIME,
        "type": STR,
        "amt": MONEY,
        "newBursImp": BOOL,
        "newBursExp": BOOL,
        "created": DATETIME,
        "updated": DATETIME,
        "sentLine": INT,  # new: the burs_sent_lines evidence this line was matched to (after a restore)
    },
    "fine_mds": {
        "fine": INT,
        "bursFineId": STR,
        "alma_fine_id": STR,
        "isReplFee": BOOL,
        "chargeAcc": STR,
        "billingDate": DATETIME,
        "fineDueDate": DATETIME,
        "termCode": STR,
        "sierra_item_detail": JSON,
        "created": DATETIME,
        "updated": DATETIME,
    },
    "burs_exports": {
        "chargesFilename": STR,
        "reversalsFilename": STR,
        "numSent": INT,
        "sent_to_bursar": DATETIME,
        "created": DATETIME,
        "updated": DATETIME,
        # new: building -> written -> sent, the date in the file names, control totals
        "state": STR,
        "exportDate": STR,  # YYYYMMDD, fixed when the export is created
        "numCharges": INT,
        "numReversals": INT,
        "chargesTotal": MONEY,
        "reversalsTotal": MONEY,
        "chargesSent": DATETIME,  # new: when the .1 file was verified on the server
        "reversalsSent": DATETIME,  # new: when the .2 file was verified on the server
    },
    "burs_export_trans": {
        "transBurs": INT,
        "bursExport": INT,
        "bursFineMd": INT,
        "sent": DATETIME,
        "arrived": DATETIME,
        "created": DATETIME,
        "updated": DATETIME,
        "line": STR,  # new: the exact 97-character line, so a resumed export writes the same bytes
        "profile": STR,  # new: the Bursar profile and version that wrote the line ("pybursar@1")
        # new: with aggregate = "patron", the key of the patron's line this ledger line is summed
        # into (every member stores that line's text); None: a line of its own
        "lineGroup": STR,
    },
    "jobs": {
        "type": STR,  # AlmaImport | BursExport | BursarSend | BursarPayments | Backup
        "status": STR,  # In Progress -> Success | Failed
        "scheduled": DATETIME,
        "started": DATETIME,
        "finished": DATETIME,
        "errorMsg": STR,
        "summary": JSON,  # new: the run summary
        "created": DATETIME,
        "updated": DATETIME,
    },
    "burs_imports": {
        "results": JSON,
        "created": DATETIME,
        "updated": DATETIME,
    },
    "burs_payments": {  # new: the payments ledger (Direction 2), one row per Bursar CSV row
        "rowKey": STR,  # Emplid|Reference|Date Paid|Paid|Charge|occurrence among identical rows
        "fileName": STR,  # the file it was first seen in
        "lineNumber": INT,
        "emplid": STR,
        "referenceNumber": STR,
        "datePaid": STR,
        "paidAmount": MONEY,
        "chargeAmount": MONEY,
        "occurrence": INT,
        "itemType": STR,
        "chargeDescription": STR,
        "state": STR,  # pending | applied | skipped | failed
        "reason": STR,  # why skipped/failed, one line
        "fine": INT,
        "almaFeeId": STR,
        "almaUserId": STR,
        "amountApplied": MONEY,
        "externalTransactionId": STR,
        "attempts": INT,
        "appliedAt": DATETIME,
        "created": DATETIME,
        "updated": DATETIME,
    },
    "burs_payment_files": {  # new: payment files fetched from PAYMENTS_SFTP_DIR
        "name": STR,
        "size": INT,
        "mtime": INT,
        "sha256": STR,
        "state": STR,  # fetched | processed
        "rows": INT,
        "created": DATETIME,
        "updated": DATETIME,
    },
    "burs_sent_lines": {  # new: lines found in files already delivered, not yet matched to the ledger
        "bursExport": INT,  # the export whose file holds the line (recorded again by a restore)
        "fileName": STR,
        "lineNumber": INT,
        "line": STR,  # the line as the Bursar has it (header and footer lines are not kept)
        "profile": STR,  # new: the profile that reads it back ("peoplesoft-csv@1"); None: pybursar@1
        "bursFineId": STR,
        "amt": MONEY,  # signed: + charge, - reversal
        "lineGroup": STR,  # aggregate = "patron": the patron's line (`line`) this fine's ledger line was summed into
        "transBurs": INT,  # the ledger line it was matched to; None until then
        "created": DATETIME,
        "updated": DATETIME,
    },
    "meta": {  # new: small key/value state, e.g. the last successful import watermark
        "key": STR,
        "value": JSON,
        "updated": DATETIME,
    },
}

# The original pyBursar's collections: what makes a database a pyBursar store.  A store (or a
# backup) made before a newer collection existed simply gains it when opened.
ORIGINAL_COLLECTIONS = ("patrons", "fines", "item_details", "trans_alma", "trans_burs", "fine_mds",
                        "burs_exports", "burs_export_trans", "jobs", "burs_imports")

# Every lookup the commands do has an index.
INDEXES: dict[str, list[str]] = {
    "patrons": ["almaPatronId"],
    "fines": ["rootAlmaFineId", "almaLoanId", "patron"],
    "item_details": ["fine"],
    "trans_alma": ["fine", "almaTransId", "almaFineId", "newAlmaImp"],
    "trans_burs": ["fine", "newBursExp", "sentLine"],
    "fine_mds": ["fine", "bursFineId"],
    "burs_exports": ["state", "sent_to_bursar"],
    "burs_export_trans": ["bursExport", "transBurs"],
    "jobs": ["type"],
    "burs_imports": [],
    "burs_payments": ["rowKey", "state", "fine"],
    "burs_payment_files": ["name"],
    "burs_sent_lines": ["transBurs", "bursExport"],
    "meta": ["key"],
}
