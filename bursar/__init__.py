"""pyBursar: keeps a library's fines in step between Alma and the campus Bursar."""

__version__ = "1.0.0"
