"""The clients of the outside world: Alma (REST and Analytics), SFTP, S3, Slack and mail.

Each speaks one protocol and knows nothing of jobs or the CLI (enforced by `.importlinter`).
"""
