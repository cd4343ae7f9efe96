"""The rules: money, the ledger, payment allocation, the Bursar file format and the report rows.

Pure functions and values: no I/O, no clients, no store (enforced by `.importlinter`).  Jobs call
them; they call nothing but each other and `bursar.errors`.
"""
