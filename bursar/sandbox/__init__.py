"""The sandbox: a local Alma server, a local SFTP server and a seeded data generator."""
