"""Driver errors that mean "this input cannot be stored or compared", not
"the server failed": a value out of a column's range, text PostgreSQL
refuses (a NUL, an invalid byte sequence), an index entry past PostgreSQL's
row-size limit. Reads and writes turn them into INVALID_ARGUMENT (a 400), so
input never makes a 500 on any backend.

And errors that mean "the database cannot work now": a full disk (SQLite
SQLITE_FULL, PostgreSQL 53100 disk_full), a PostgreSQL that is down,
restarting or unreachable. Those are UNAVAILABLE (a 503 with Retry-After):
the write was not applied, and the same request succeeds once space or the
database is back (`unavailable`). Anything else stays a fault."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc

from service.base.errors import CommonReason, InvalidArgument, Unavailable

_REFUSED_INPUT = (
    sa_exc.DataError,
    psycopg.DataError,  # numeric overflow, invalid text representation, NUL, bad encoding…
    pg_errors.ProgramLimitExceeded,  # "index row size … exceeds maximum"
    sqlite3.DataError,
    OverflowError,  # an integer past SQLite's 64 bits, at bind time
)


def refused_input(exc: BaseException) -> InvalidArgument | None:
    """The INVALID_ARGUMENT a driver error caused by input stands for, else None."""
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    if isinstance(exc, _REFUSED_INPUT) or isinstance(cause, _REFUSED_INPUT):
        first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
        return InvalidArgument(f"a value cannot be stored: {first}", reason=CommonReason.UNSTORABLE_VALUE)
    return None


# What a refused caller is told to wait, in seconds.
RETRY_AFTER_SECONDS = 2
# PostgreSQL SQLSTATE classes of a server that cannot work now: 08 connection
# exception, 53 insufficient resources (53100 disk_full), 57P admin shutdown
# and crash/cannot-connect-now.
_PG_AWAY = ("08", "53", "57P")


@dataclass(frozen=True)
class Outage:
    """Why the database cannot write now, as its reason and a line for the log."""

    reason: CommonReason
    detail: str

    def error(self) -> Unavailable:
        what = "the disk is full" if self.reason is CommonReason.DISK_FULL else "the database is unavailable"
        return Unavailable(
            f"the write was not applied: {what}; retry in {RETRY_AFTER_SECONDS} s",
            reason=self.reason,
            metadata={"retry_after_seconds": str(RETRY_AFTER_SECONDS)},
        )


def outage(exc: BaseException) -> Outage | None:
    """The outage a driver error stands for (full disk, database away), else None."""
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) else exc
    first = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
    if isinstance(cause, sqlite3.Error):
        code = (getattr(cause, "sqlite_errorcode", None) or 0) & 0xFF  # the primary code of an extended one
        if code == sqlite3.SQLITE_FULL or "disk is full" in first:
            return Outage(CommonReason.DISK_FULL, first)
        if code in (sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN) or "disk I/O error" in first:
            return Outage(CommonReason.DATABASE_UNAVAILABLE, first)
        return None
    if isinstance(cause, OSError) and cause.errno == 28:  # ENOSPC outside the driver (a journal file)
        return Outage(CommonReason.DISK_FULL, first)
    if isinstance(cause, psycopg.Error):
        state = cause.sqlstate or ""
        if state == "53100":
            return Outage(CommonReason.DISK_FULL, first)
        if isinstance(cause, psycopg.OperationalError | psycopg.InterfaceError) and (
            not state or state.startswith(_PG_AWAY)
        ):
            return Outage(CommonReason.DATABASE_UNAVAILABLE, first)
        return None
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return Outage(CommonReason.DATABASE_UNAVAILABLE, first)
    return None
