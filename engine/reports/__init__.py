"""Reports over many cases: figures for the city and its supervisors, never personal data."""
