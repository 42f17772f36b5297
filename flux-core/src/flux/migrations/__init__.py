"""Alembic migrations of the metadata database (``flux db upgrade``).

``HEAD`` names the newest revision, so that checking whether a database is current needs one
query and no Alembic import; a test keeps it equal to Alembic's own head.
"""

HEAD = "0002"
