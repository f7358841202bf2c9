"""Pure metric functions: small arrays and aggregates in, frozen records out. No I/O here."""
