"""Alma clients: HTTP session and rate limiter, Analytics reports, users' fees."""
