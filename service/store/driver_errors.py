"""Driver errors that mean "this input cannot be stored or compared", not
"the server failed": a value out of a column's range, text PostgreSQL
refuses (a NUL, an invalid byte sequence), an index entry past PostgreSQL's
row-size limit. Reads and writes turn them into INVALID_ARGUMENT (a 400), so
input never makes a 500 on any backend; anything else stays a fault."""

from __future__ import annotations

import sqlite3

import psycopg
from psycopg import errors as pg_errors
from sqlalchemy import exc as sa_exc

from service.base.errors import CommonReason, InvalidArgument

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
