"""What every run needs around its job: logs, the run lock, progress counters, file-system helpers,
crash points for the kill tests, leftover clean-up, and the summary and report a run prints.
"""
