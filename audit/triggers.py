"""Database triggers that make the AuditLog table append-only, whatever the client.

The ORM refuses changes too (see `audit.models`), but raw SQL, other tools and
other applications do not go through it: the database itself refuses UPDATE,
DELETE and TRUNCATE. A database superuser (or the table owner) can still disable
or drop the triggers; the hash chain is what reveals what they did then.

The migration that adds the triggers calls `install_append_only_triggers`; the
test settings call `allow_flush_in_tests` so Django's test database reset can
empty the table (see `suspended_append_only_triggers`).
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from django.db import transaction
from django.db.backends.base.operations import BaseDatabaseOperations

AUDIT_LOG_TABLE = "audit_auditlog"

# Start of the error every refused statement raises; tests match on it.
APPEND_ONLY_DB_ERROR = "audit log is append-only"

UNSUPPORTED_DATABASE = (
    "The append-only triggers of the audit log support PostgreSQL and SQLite, not {vendor}: "
    "without them raw SQL could rewrite the audit log."
)

POSTGRES_FUNCTION = "audit_auditlog_refuse_change"
POSTGRES_ROW_TRIGGER = "audit_auditlog_append_only"
POSTGRES_TRUNCATE_TRIGGER = "audit_auditlog_no_truncate"
SQLITE_UPDATE_TRIGGER = "audit_auditlog_no_update"
SQLITE_DELETE_TRIGGER = "audit_auditlog_no_delete"

TRIGGER_NAMES = {
    "postgresql": (POSTGRES_ROW_TRIGGER, POSTGRES_TRUNCATE_TRIGGER),
    "sqlite": (SQLITE_UPDATE_TRIGGER, SQLITE_DELETE_TRIGGER),
}

# 23001 restrict_violation: drivers report it as an IntegrityError, like SQLite's
# RAISE(ABORT), so callers see the same exception class on both databases.
POSTGRES_INSTALL = (
    f"""
    CREATE OR REPLACE FUNCTION {POSTGRES_FUNCTION}() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{APPEND_ONLY_DB_ERROR}: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation',
                  HINT = 'Audit entries are only ever inserted; see the README (The audit trail).';
    END;
    $$
    """,
    f"""
    CREATE TRIGGER {POSTGRES_ROW_TRIGGER}
    BEFORE UPDATE OR DELETE ON {AUDIT_LOG_TABLE}
    FOR EACH ROW EXECUTE FUNCTION {POSTGRES_FUNCTION}()
    """,
    f"""
    CREATE TRIGGER {POSTGRES_TRUNCATE_TRIGGER}
    BEFORE TRUNCATE ON {AUDIT_LOG_TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {POSTGRES_FUNCTION}()
    """,
)
POSTGRES_REMOVE = (
    f"DROP TRIGGER IF EXISTS {POSTGRES_TRUNCATE_TRIGGER} ON {AUDIT_LOG_TABLE}",
    f"DROP TRIGGER IF EXISTS {POSTGRES_ROW_TRIGGER} ON {AUDIT_LOG_TABLE}",
    f"DROP FUNCTION IF EXISTS {POSTGRES_FUNCTION}()",
)

# SQLite has no TRUNCATE: `DELETE FROM t` without WHERE is its truncate, and a
# table with a DELETE trigger is emptied row by row, so the trigger fires.
SQLITE_INSTALL = (
    f"""
    CREATE TRIGGER {SQLITE_UPDATE_TRIGGER} BEFORE UPDATE ON {AUDIT_LOG_TABLE}
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_DB_ERROR}: UPDATE on {AUDIT_LOG_TABLE} refused'); END
    """,
    f"""
    CREATE TRIGGER {SQLITE_DELETE_TRIGGER} BEFORE DELETE ON {AUDIT_LOG_TABLE}
    BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_DB_ERROR}: DELETE on {AUDIT_LOG_TABLE} refused'); END
    """,
)
SQLITE_REMOVE = (
    f"DROP TRIGGER IF EXISTS {SQLITE_DELETE_TRIGGER}",
    f"DROP TRIGGER IF EXISTS {SQLITE_UPDATE_TRIGGER}",
)

INSTALL = {"postgresql": POSTGRES_INSTALL, "sqlite": SQLITE_INSTALL}
REMOVE = {"postgresql": POSTGRES_REMOVE, "sqlite": SQLITE_REMOVE}


def _statements(table: dict, vendor: str) -> tuple[str, ...]:
    try:
        return table[vendor]
    except KeyError:
        raise NotImplementedError(UNSUPPORTED_DATABASE.format(vendor=vendor)) from None


def install_append_only_triggers(apps, schema_editor) -> None:
    """Create the triggers that refuse UPDATE, DELETE and TRUNCATE (migration operation)."""
    for sql in _statements(INSTALL, schema_editor.connection.vendor):
        schema_editor.execute(sql, params=None)


def remove_append_only_triggers(apps, schema_editor) -> None:
    """Drop the append-only triggers (reverse of the migration operation)."""
    for sql in _statements(REMOVE, schema_editor.connection.vendor):
        schema_editor.execute(sql, params=None)


def append_only_trigger_problems(connection) -> list[str]:
    """Return what is wrong with the append-only triggers: missing or disabled ones."""
    expected = _statements(TRIGGER_NAMES, connection.vendor)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT tgname, tgenabled FROM pg_trigger "
                "WHERE tgrelid = %s::regclass AND NOT tgisinternal",
                [AUDIT_LOG_TABLE],
            )
            state = dict(cursor.fetchall())
        else:
            cursor.execute(
                "SELECT name, 'O' FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [AUDIT_LOG_TABLE],
            )
            state = dict(cursor.fetchall())
    problems = []
    for name in expected:
        if name not in state:
            problems.append(f"trigger {name} is missing")
        elif state[name] == "D":
            problems.append(f"trigger {name} is disabled")
    return problems


@contextmanager
def suspended_append_only_triggers(connection):
    """Switch the append-only triggers off for a block, inside one transaction.

    This is exactly what a database owner can do by hand, which is why the
    AuditLog also carries a hash chain. It exists for the test database reset:
    the triggers come back when the block ends, and if the block fails the
    transaction rolls the whole thing back (DDL is transactional on both
    PostgreSQL and SQLite).
    """
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if AUDIT_LOG_TABLE not in connection.introspection.table_names(cursor):
            yield
            return
        if connection.vendor == "postgresql":
            cursor.execute(f"ALTER TABLE {AUDIT_LOG_TABLE} DISABLE TRIGGER USER")
            yield
            cursor.execute(f"ALTER TABLE {AUDIT_LOG_TABLE} ENABLE TRIGGER USER")
        elif connection.vendor == "sqlite":
            # SQLite cannot disable a trigger: drop it and recreate it as it was.
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = %s",
                [AUDIT_LOG_TABLE],
            )
            triggers = cursor.fetchall()
            for name, _sql in triggers:
                cursor.execute(f'DROP TRIGGER "{name}"')
            yield
            for _name, sql in triggers:
                cursor.execute(sql)
        else:
            raise NotImplementedError(UNSUPPORTED_DATABASE.format(vendor=connection.vendor))


def allow_flush_in_tests() -> None:
    """Let Django's database flush empty the AuditLog (test settings only).

    TransactionTestCase and pytest-django's `transactional_db` reset the test
    database with `flush` (TRUNCATE on PostgreSQL, DELETE on SQLite), which the
    triggers refuse. This wraps `execute_sql_flush` so the flush runs with the
    triggers suspended in its own transaction; production never calls this, so
    there the triggers have no way around them short of DDL.
    """
    original = BaseDatabaseOperations.execute_sql_flush
    if getattr(original, "audit_allows_flush", False):
        return

    @functools.wraps(original)
    def execute_sql_flush(self, sql_list):
        with suspended_append_only_triggers(self.connection):
            return original(self, sql_list)

    execute_sql_flush.audit_allows_flush = True
    BaseDatabaseOperations.execute_sql_flush = execute_sql_flush
