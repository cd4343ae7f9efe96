"""Column headings of the three Analytics reports, in the original tool's column order.

Rows are mapped by the headings a report declares (`col_names=true`); when a report comes back
without headings, the columns are taken in this order (Column1..ColumnN; Column0 is Analytics'
dummy and is always dropped).
"""

FINE_COMMENT = "Fine Comment"
FINE_CREATED = "Fine Fee Creation Date"
FINE_ID = "Fine Fee Id"
FINE_STATUS = "Fine Fee Status"
FINE_TYPE = "Fine Fee Type"
STATUS_DATE = "Status Date"
AUTHOR = "Author"
BARCODE = "Barcode"
CALL_NUMBER = "Call Number"
DUE_DATE = "Due Date"
DUE_TIME = "Due Time"
LOAN_ID = "Item Loan Id"
LOAN_DATE = "Loan Date"
LOAN_TIME = "Loan Time"
RETURN_DATE = "Return Date"
RETURN_TIME = "Return Time"
LOAN_DETAILS = "Loan Details"
PRIMARY_ID = "Primary Identifier"
LOCATION_CODE = "law-stks ELSE Location Code"
ORIGINAL_AMOUNT = "Original Amount"
REMAINING_AMOUNT = "Remaining Amount"
# Optional: the patron's Alma user group.  Not in FINES_COLUMNS (a report without headings keeps
# the original's 21 columns); read when the report declares it, needed when the profile selects
# by user group (docs/profiles.md).
USER_GROUP = "User Group"

TRANS_CREATED = "Fine Fee Transaction Creation Date"
TRANS_ID = "Fine Fee Transaction Id"
TRANS_TYPE = "Fine FeeTransaction Type"  # sic: no space between "Fee" and "Transaction"
TRANS_NOTE = "Transaction Note"
TRANS_AMOUNT = "Transaction Amount"

FINES_COLUMNS = [
    FINE_COMMENT, FINE_CREATED, FINE_ID, FINE_STATUS, FINE_TYPE, STATUS_DATE, AUTHOR, BARCODE,
    CALL_NUMBER, DUE_DATE, DUE_TIME, LOAN_ID, LOAN_DATE, LOAN_TIME, RETURN_DATE, RETURN_TIME,
    LOAN_DETAILS, PRIMARY_ID, LOCATION_CODE, ORIGINAL_AMOUNT, REMAINING_AMOUNT,
]
TRANSACTIONS_COLUMNS = [
    FINE_ID, TRANS_CREATED, TRANS_ID, TRANS_TYPE, TRANS_NOTE, LOAN_ID, PRIMARY_ID, TRANS_AMOUNT,
]
BALANCES_COLUMNS = [PRIMARY_ID, REMAINING_AMOUNT]

# The columns each import cannot do without (a report missing one is a clear error naming it).
FINES_REQUIRED = [FINE_ID, FINE_CREATED, FINE_STATUS, FINE_TYPE, STATUS_DATE, PRIMARY_ID,
                  ORIGINAL_AMOUNT, REMAINING_AMOUNT]
TRANSACTIONS_REQUIRED = [FINE_ID, TRANS_ID, TRANS_TYPE, TRANS_AMOUNT]
BALANCES_REQUIRED = [PRIMARY_ID, REMAINING_AMOUNT]
FINES_OPTIONAL = [USER_GROUP]

# The date column each report's incremental filter compares (sawx sqlExpression).
FINES_FILTER_COLUMN = '"Fines and Fees Transactions"."Status Date"'
TRANSACTIONS_FILTER_COLUMN = '"Fines and Fees Transactions"."Fine Fee Transaction Creation Date"'
# heading that each filter column refers to, for the sandbox server
FILTER_COLUMN_HEADINGS = {FINES_FILTER_COLUMN: STATUS_DATE, TRANSACTIONS_FILTER_COLUMN: TRANS_CREATED}
