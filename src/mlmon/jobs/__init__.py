"""Jobs: turn warehouse aggregates for a range of windows into samples and service checks."""
