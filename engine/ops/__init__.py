"""Running the system: the database connection and schema, backup and restore, the consistency
check, background workers, demo data.
"""
