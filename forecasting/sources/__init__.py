"""The database side: engines and URLs, source checks and reads, upserts, the job's tables and schema, file loads, locks."""
