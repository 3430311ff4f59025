"""Hot statements: compiled once by SQLAlchemy, run by asyncpg in the request's transaction.

A statement executed through SQLAlchemy costs about 0.35 M instructions of
Python (cache key, execution context, parameter and result processing, the
greenlet hop, the event dispatch) before asyncpg sends it; asyncpg itself
costs about 0.03 M. On a request that is little else than a few statements (a
password login's lookup, session and audit entry; a refresh-token rotation;
a vault decrypt's audit entry) that is a fifth of the event loop's work.
:class:`Statement` keeps SQLAlchemy for what it is good at (the statement is
a SQLAlchemy construct over the models, compiled with the asyncpg dialect,
its parameters converted by SQLAlchemy's own type processors) and hands the
execution to the asyncpg connection underneath the request's session:

* same transaction: the statement runs on the connection of the session's
  transaction, begun through SQLAlchemy's asyncpg adapter if nothing ran on
  it yet, so the request's commit or rollback covers it like any other
  statement (``kit.db.DBSession`` still owns the transaction);
* same errors: asyncpg's exceptions are raised as the SQLAlchemy exceptions
  the same failure raises through SQLAlchemy (``IntegrityError`` for a
  constraint, a connection broken under the statement invalidated and
  raised as a disconnect), with parameters hidden, so ``kit.errors`` answers
  409, 503 or 500 exactly as for SQLAlchemy's statements;
* same traces: one CLIENT span per statement from :mod:`kit.telemetry`, with
  the attributes of SQLAlchemy's statements.

Rows come back as asyncpg records (JSON decoded by the codec SQLAlchemy's
dialect installs on each connection). The ORM's identity map does not see
them: use it for statements whose rows the request does not also load
through the ORM, or make the row an object of the session with
:func:`attach` (then changes to it are flushed like any loaded object's).

This module relies on two attributes of SQLAlchemy's asyncpg adapter (the
adapter begins its transaction lazily, at the first statement);
``tests/kit/test_statements.py`` pins them, so an upgrade that renames them
fails there and not in production.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

import asyncpg
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import SessionTransaction, class_mapper, make_transient_to_detached
from sqlalchemy.orm.attributes import instance_dict
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

from kit.telemetry import StatementSpans, operation_of

_Model = TypeVar("_Model")

_DIALECT: Dialect = asyncpg_dialect()  # type: ignore[no-untyped-call]

#: Where the session keeps the connection of its current transaction (``Session.info``).
_INFO_KEY = "kit.statements.connection"

#: Failures after which asyncpg's connection cannot be used again (besides any error on a connection that
#: asyncpg knows is closed; its other client-side errors, a wrong argument type say, leave it usable).
_BROKEN = (
    asyncpg.exceptions.ConnectionDoesNotExistError,  # lost while the statement ran
    asyncpg.exceptions.InternalClientError,  # the protocol was left mid-operation
    asyncpg.exceptions.ConnectionFailureError,  # SQLSTATE class 08
    asyncpg.exceptions.AdminShutdownError,
    asyncpg.exceptions.CrashShutdownError,
    OSError,
    asyncio.IncompleteReadError,
)


@dataclass(frozen=True, slots=True)
class _Parameter:
    name: str
    convert: Any  # SQLAlchemy's bind processor for the parameter's type, or None
    fixed: bool  # a value given in the statement itself (a literal), not by the caller
    value: Any


@dataclass(slots=True)
class _TransactionConnection:
    #: Weak: the session keeps this in its ``info``, and a strong reference back to the session's
    #: transaction (which refers to the session) would make every request's session cyclic garbage.
    transaction: weakref.ref[SessionTransaction]
    connection: AsyncConnection
    driver: asyncpg.Connection
    spans: StatementSpans | None


class Statement:
    """One SQL statement, compiled once, executed on the request transaction's asyncpg connection."""

    def __init__(self, statement: ClauseElement) -> None:
        compiled = cast(SQLCompiler, statement.compile(dialect=_DIALECT))
        self.sql = str(compiled)
        self.operation = operation_of(self.sql)
        parameters = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            if bind.expanding:
                raise ValueError(f"expanding parameter {name!r} (IN lists) is not supported")
            convert = bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            fixed = not bind.required
            value = bind.effective_value if fixed else None
            if fixed and convert is not None:
                value = convert(value)
            parameters.append(_Parameter(name, convert, fixed, value))
        self._parameters: Sequence[_Parameter] = tuple(parameters)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        """The positional arguments asyncpg gets for ``params`` (by name, as for SQLAlchemy)."""
        arguments = []
        for parameter in self._parameters:
            if parameter.fixed:
                arguments.append(parameter.value)
                continue
            try:
                value = params[parameter.name]
            except KeyError:
                raise TypeError(f"missing parameter {parameter.name!r}") from None
            arguments.append(value if parameter.convert is None or value is None else parameter.convert(value))
        return arguments

    async def fetchrow(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> asyncpg.Record | None:
        """The first row (or None)."""
        return cast(asyncpg.Record | None, await self._run(session, params or {}, "fetchrow"))

    async def fetch(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> list[asyncpg.Record]:
        """Every row."""
        return cast(list[asyncpg.Record], await self._run(session, params or {}, "fetch"))

    async def fetchval(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> Any:
        """The first column of the first row (or None)."""
        return await self._run(session, params or {}, "fetchval")

    async def execute(self, session: AsyncSession, params: Mapping[str, Any] | None = None) -> str:
        """Run it for its effect; the command tag (``"UPDATE 1"``)."""
        return cast(str, await self._run(session, params or {}, "execute"))

    async def _run(self, session: AsyncSession, params: Mapping[str, Any], method: str) -> Any:
        arguments = self.arguments(params)
        held = await _transaction_connection(session)
        span = held.spans.start(self.operation, self.sql) if held.spans is not None else None
        try:
            result = await getattr(held.driver, method)(self.sql, *arguments)
        except Exception as failure:
            if span is not None:
                StatementSpans.failed(span, type(failure).__name__)
            translated = await _as_sqlalchemy_error(held.connection, held.driver, self.sql, failure)
            if translated is None:
                raise
            raise translated from failure
        except BaseException:
            if span is not None:
                span.end()
            raise
        if span is not None:
            span.end()
        return result


async def _transaction_connection(session: AsyncSession) -> _TransactionConnection:
    """The asyncpg connection of the session's current transaction, begun if it was not yet."""
    transaction = session.sync_session.get_transaction()
    held: _TransactionConnection | None = session.info.get(_INFO_KEY)
    if held is not None and transaction is not None and held.transaction() is transaction and transaction.is_active:
        return held
    connection = await session.connection()
    # Checked out just above: reading it from the sync connection does no I/O (no greenlet hop).
    pooled = (
        connection.sync_connection.connection if connection.sync_connection else await connection.get_raw_connection()
    )
    adapter = pooled.dbapi_connection
    # Private to SQLAlchemy's asyncpg adapter (see the module docstring).
    if not adapter._started:  # type: ignore[union-attr]
        try:
            await adapter._start_transaction()  # type: ignore[union-attr]
        except Exception as failure:
            # The adapter raises its own DBAPI error classes, asyncpg's error as the cause.
            original = failure.__cause__ if isinstance(failure.__cause__, Exception) else failure
            driver = cast(asyncpg.Connection, pooled.driver_connection)
            translated = await _as_sqlalchemy_error(connection, driver, "BEGIN", original)
            if translated is None:
                raise
            raise translated from failure
    transaction = session.sync_session.get_transaction()
    assert transaction is not None  # session.connection() began one
    held = _TransactionConnection(
        transaction=weakref.ref(transaction),
        connection=connection,
        driver=cast(asyncpg.Connection, pooled.driver_connection),
        spans=StatementSpans.of(connection.sync_engine),
    )
    session.info[_INFO_KEY] = held
    return held


async def _as_sqlalchemy_error(
    connection: AsyncConnection, driver: asyncpg.Connection, sql: str, failure: Exception
) -> Exception | None:
    """The exception SQLAlchemy raises for the same failure (None: the failure as it is), without the parameters."""
    if isinstance(failure, asyncpg.exceptions.IntegrityConstraintViolationError):
        return sa_exc.IntegrityError(sql, None, failure, hide_parameters=True)
    if isinstance(failure, _BROKEN) or driver.is_closed():
        # Never handed out again: the pool replaces it, the request is a 503 (kit.errors).
        await connection.invalidate(failure)
        return sa_exc.DBAPIError(sql, None, failure, hide_parameters=True, connection_invalidated=True)
    if isinstance(failure, asyncpg.exceptions.SyntaxOrAccessError):
        return sa_exc.ProgrammingError(sql, None, failure, hide_parameters=True)
    if isinstance(failure, asyncpg.exceptions.InternalServerError):
        return sa_exc.InternalError(sql, None, failure, hide_parameters=True)
    if isinstance(failure, asyncpg.exceptions.PostgresError):
        return sa_exc.DBAPIError(sql, None, failure, hide_parameters=True)
    return None


def attach(session: AsyncSession, model: type[_Model], record: Mapping[str, Any], *, prefix: str = "") -> _Model:
    """The ORM object of ``session`` for a row a :class:`Statement` read (``model``'s columns, by name, each
    after ``prefix``: a row of two tables is selected with ``LABEL_STYLE_TABLENAME_PLUS_COL`` and each attached
    with ``prefix=table_label_prefix(model)``), as if the session had loaded it: a change to it is flushed as
    an UPDATE."""
    manager = class_mapper(model).class_manager
    instance: _Model = manager.new_instance()
    # Values written as a query's loader writes them (no attribute events); make_transient_to_detached then
    # records them as loaded, so nothing is pending until the caller changes something.
    instance_dict(instance).update({key: record[prefix + name] for key, name in _column_names(model)})
    make_transient_to_detached(instance)
    session.add(instance)
    return instance


def table_label_prefix(model: type[Any]) -> str:
    """How ``LABEL_STYLE_TABLENAME_PLUS_COL`` starts the labels of ``model``'s columns (``identity_account_``)."""
    table = class_mapper(model).local_table
    name = getattr(table, "name", "")
    schema = getattr(table, "schema", None)
    return f"{schema}_{name}_" if schema else f"{name}_"


_COLUMN_NAMES: dict[type[Any], tuple[tuple[str, str], ...]] = {}


def _column_names(model: type[Any]) -> tuple[tuple[str, str], ...]:
    """(attribute, column name) of each column ``model`` maps."""
    names = _COLUMN_NAMES.get(model)
    if names is None:
        names = _COLUMN_NAMES[model] = tuple(
            (attribute.key, attribute.columns[0].name) for attribute in class_mapper(model).column_attrs
        )
    return names
