"""Backups: archive format (``archive``), storage (``storage``), schedule and retention
(``schedule``, ``retention``), and the service every surface uses (``service``)."""
