"""The SQL of the hot device reads, compiled once per filter shape and run on the DB-API cursor.

GET /v1/devices and GET /v1/devices/{code} are the API's busiest routes. SQLAlchemy building a statement per
request, keying it for its compiled cache and matching the result's columns cost several times what SQLite or
PostgreSQL spend answering it. Here each shape of request (which filters are present, how many latitude bands a
box lists, page or count) is built once with SQLAlchemy Core, every value a bound parameter, and compiled once per
dialect; a request then only fills in the values and runs the SQL string on the pooled DB-API connection.

The SQL is exactly what SQLAlchemy would send (its text and its parameters, constants included), so results,
ordering and the query plans are those of the statements built per request.

DB-API errors are raised as SQLAlchemy's (`sqlalchemy.exc.DBAPIError.instance`) by `run`, so the API's error
handlers answer them as they answer errors of the ORM's reads (503 DATABASE_UNAVAILABLE for a lost connection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy import Connection, Dialect, bindparam, func, literal, literal_column
from sqlalchemy import select as sa_select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from indexer import spatial
from indexer.models import CodeRule, Device, Member

__all__ = ["DEVICE_COLUMNS", "ListShape", "Prepared", "Reader", "box_values", "by_code", "filtered", "list_statement"]

# The columns of a device as the API shows it, in the order `crud.device_dict` reads them.
DEVICE_COLUMNS = (
    col(Device.code),
    col(CodeRule.type_name),
    col(Device.type_id),
    col(Member.code).label("owner_org"),
    col(Device.district),
    col(Device.lat_e6),
    col(Device.lon_e6),
    col(Device.built_at),
    col(Device.status),
    col(Device.attributes),
    col(Device.attributes_hash),
    col(Device.tx_hash),
    col(Device.block_number),
    col(Device.replaced_by),
    col(Device.last_inspected_at),
    col(Device.updated_block),
)
_CELL = literal_column(f"(devices.lat_e6 / {spatial.CELL_E6})")  # reads as the spatial index's expression


@dataclass(frozen=True)
class Prepared:
    """A compiled statement: its SQL, the order of its named parameters (positional dialects) and its constants."""

    sql: str
    names: tuple[str, ...] | None  # None: the DB-API takes a mapping
    constants: dict[str, Any]

    def arguments(self, values: dict[str, Any]) -> Sequence[Any] | dict[str, Any]:
        merged = {**self.constants, **values}
        return merged if self.names is None else [merged[name] for name in self.names]


@dataclass(frozen=True)
class ListShape:
    """Which filters a list request has; `bbox_cells`/`near_cells` the number of latitude bands its box lists
    (0: a range of bands, None: no such filter); `count`: the statement that counts instead of the page."""

    type: bool = False
    owner: bool = False
    status: bool = False
    district: bool = False
    bbox_cells: int | None = None
    near_cells: int | None = None
    count: bool = False


def _prepare(statement: Any, dialect: Dialect) -> Prepared:
    compiled = statement.compile(dialect=dialect)
    processors = compiled._bind_processors  # what SQLAlchemy applies to each value (e.g. floats on SQLite)
    constants = {  # the statement's own values (literals, SQL constants); the rest each request gives
        name: processors[name](value) if name in processors and value is not None else value
        for name, value in compiled.params.items()
        if not compiled.binds[name].required
    }
    names = tuple(compiled.positiontup) if compiled.positional else None
    return Prepared(compiled.string, names, constants)


def _box(prefix: str, cells: int) -> ColumnElement[bool]:
    """`indexer.spatial.box_condition` with each listed band its own parameter (`{prefix}_cell{i}`), not an
    expanding one, so the statement compiles once per number of bands."""
    if cells:
        bands = _CELL.in_([bindparam(f"{prefix}_cell{i}") for i in range(cells)])
    else:
        bands = _CELL.between(bindparam(f"{prefix}_first_cell"), bindparam(f"{prefix}_last_cell"))
    lat, lon = literal_column("devices.lat_e6"), literal_column("devices.lon_e6")
    return (
        bands
        & lon.between(bindparam(f"{prefix}_min_lon"), bindparam(f"{prefix}_max_lon"))
        & lat.between(bindparam(f"{prefix}_min_lat"), bindparam(f"{prefix}_max_lat"))
    )


def box_values(
    prefix: str, min_lat_e6: int, max_lat_e6: int, min_lon_e6: int, max_lon_e6: int
) -> tuple[int, dict[str, Any]]:
    """The number of listed bands (0: a range) and the parameter values of `_box` for a box."""
    _, values = spatial.box_condition(prefix, min_lat_e6, max_lat_e6, min_lon_e6, max_lon_e6)
    cells = values.pop(f"{prefix}_cells", None)
    if cells is None:
        return 0, values
    values.update({f"{prefix}_cell{i}": cell for i, cell in enumerate(cells)})
    return len(cells), values


def filtered(query: Any, shape: ListShape, dialect: str) -> Any:
    """`query` narrowed by the shape's filters, each value a named parameter (type, owner, status, district).

    With a place filter the spatial index is the way in. SQLite's planner has no statistics and would take an
    equality index (type, owner, status, district) over the spatial one, then read every device of that type in the
    city; there the other filters are written so that no index serves them (`+ 0`, `|| ''`). PostgreSQL's planner
    chooses by its statistics.
    """
    blind = (shape.bbox_cells is not None or shape.near_cells is not None) and dialect == "sqlite"

    def number(column: Any) -> Any:
        return column + 0 if blind else column

    if shape.type:
        type_id = sa_select(col(CodeRule.type_id)).where(col(CodeRule.type_name) == bindparam("type"))
        query = query.where(number(col(Device.type_id)) == type_id.scalar_subquery())
    if shape.owner:
        org_id = sa_select(col(Member.org_id)).where(col(Member.code) == bindparam("owner"))
        query = query.where(number(col(Device.owner_org_id)) == org_id.scalar_subquery())
    if shape.status:
        query = query.where((col(Device.status).concat("") if blind else col(Device.status)) == bindparam("status"))
    if shape.district:
        query = query.where(number(col(Device.district)) == bindparam("district"))
    if shape.bbox_cells is not None:
        query = query.where(_box("bbox", shape.bbox_cells))
    if shape.near_cells is not None:
        query = query.where(_box("near", shape.near_cells), spatial.distance_m(dialect) <= bindparam("near_radius"))
    return query


def _device_select() -> Any:
    return (
        sa_select(*DEVICE_COLUMNS)
        .select_from(Device)
        .outerjoin(CodeRule, col(CodeRule.type_id) == col(Device.type_id))
        .outerjoin(Member, col(Member.org_id) == col(Device.owner_org_id))
    )


def _list_statement(shape: ListShape, dialect: str) -> Any:
    if shape.count:
        return filtered(sa_select(func.count()).select_from(Device), shape, dialect)
    query = filtered(_device_select(), shape, dialect)
    near = shape.near_cells is not None
    if shape.bbox_cells is None and not near:
        return query.order_by(col(Device.code)).limit(bindparam("limit")).offset(bindparam("offset"))
    # a place filter matches few devices: the page counts them all too (a window count), one statement
    distance = spatial.distance_m(dialect) if near else literal(None)
    order = (distance, col(Device.code)) if near else (col(Device.code),)
    page = query.add_columns(distance.label("distance_m"), func.count().over().label("matches"))
    return page.order_by(*order).limit(bindparam("limit")).offset(bindparam("offset"))


_prepared: dict[tuple[Any, ...], Prepared] = {}
_lock = Lock()
_MAX_PREPARED = 4_096  # shapes x dialects; band counts are capped by spatial.MAX_LISTED_CELLS


def _cached(key: tuple[Any, ...], build: Any, dialect: Dialect) -> Prepared:
    found = _prepared.get(key)
    if found is None:
        found = _prepare(build(), dialect)
        with _lock:
            if len(_prepared) >= _MAX_PREPARED:
                _prepared.clear()
            _prepared[key] = found
    return found


def list_statement(shape: ListShape, dialect: Dialect) -> Prepared:
    """The compiled page (or count) statement of a list shape, built on first use."""
    key = ("list", dialect.name, dialect.paramstyle, shape)
    return _cached(key, lambda: _list_statement(shape, dialect.name), dialect)


def by_code(dialect: Dialect) -> Prepared:
    """The compiled statement of one device by its code (parameter `code`)."""
    key = ("code", dialect.name, dialect.paramstyle)
    return _cached(key, lambda: _device_select().where(col(Device.code) == bindparam("code")), dialect)


@dataclass(frozen=True)
class Reader:
    """A pooled DB-API connection and its dialect: where the prepared statements run."""

    connection: PoolProxiedConnection
    dialect: Dialect

    @classmethod
    def of(cls, conn: Connection) -> Reader:
        """The reader under a SQLAlchemy connection (in its transaction, if one is open)."""
        return cls(conn.connection, conn.dialect)

    def rows(self, prepared: Prepared, values: dict[str, Any], limit: int | None = None) -> list[Any]:
        """The rows of `prepared` with `values` (at most `limit` of them), on the connection's DB-API cursor."""
        cursor = self.connection.cursor()
        arguments = prepared.arguments(values)
        try:
            cursor.execute(prepared.sql, arguments)
            return list(cursor.fetchall() if limit is None else cursor.fetchmany(limit))
        except self.dialect.loaded_dbapi.Error as exc:
            lost = self.dialect.is_disconnect(exc, self.connection.dbapi_connection, cursor)
            if lost:
                self.connection.invalidate(exc)
            raise DBAPIError.instance(
                prepared.sql,
                arguments,
                exc,
                self.dialect.loaded_dbapi.Error,
                connection_invalidated=lost,
                dialect=self.dialect,
            ) from exc
        finally:
            cursor.close()
