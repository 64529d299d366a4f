"""Bot analytics: rollups written at ingest, queries that read only rollups (issue 15)."""
