"""Status page templates (a package so the HTML ships in wheels)."""
