"""vault/_driver.py: Core statements run on the DB-API cursor behave like SQLAlchemy's own.

Same rows, same parameter handling (literal binds SQLAlchemy made up keep their values),
same exception classes with the parameters hidden, a lost PostgreSQL connection
invalidated and replaced, and cursor-level listeners still called.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, bindparam, event, insert, select, text, update
from sqlalchemy.exc import IntegrityError, OperationalError

from coatcheck.vault import _driver, make_engine
from coatcheck.vault.models import AuditHead, Kek
from tests.conftest import PG_URL, kill_pooled_backend

_KEKS = Kek.__table__
_PUT = _driver.Statement(insert(_KEKS), ["tenant", "version", "wrapped", "created_at"])
_NEWEST = _driver.Statement(
    select(_KEKS.c.version, _KEKS.c.wrapped)
    .where(_KEKS.c.tenant == bindparam("tenant"))
    .order_by(_KEKS.c.version.desc())
    .limit(1)
)
_VERSIONS = _driver.Statement(
    select(_KEKS.c.version).where(_KEKS.c.tenant == bindparam("tenant")).order_by(_KEKS.c.version)
)
_TOUCH = _driver.Statement(
    update(_KEKS).where(_KEKS.c.tenant == bindparam("tenant")).values(created_at=bindparam("at"))
)
SECRET = "canary-4111111111111111"


def _kek(tenant: str, version: int) -> dict[str, Any]:
    return {"tenant": tenant, "version": version, "wrapped": b"\x00\xff" * 8, "created_at": 1.5}


def test_rows_scalars_rowcount_and_many_match_sqlalchemy(engine: Engine) -> None:
    with engine.begin() as conn:
        _PUT.many(conn, [_kek("a", v) for v in (1, 2, 3)] + [_kek("b", 1)])
        newest = _NEWEST.rows(conn, {"tenant": "a"})  # LIMIT 1 is a bind SQLAlchemy made up
        assert [(r.version, r.wrapped) for r in newest] == [(3, b"\x00\xff" * 8)]
        assert _VERSIONS.scalars(conn, {"tenant": "a"}) == [1, 2, 3]
        assert _VERSIONS.scalars(conn, {"tenant": "nobody"}) == []
        assert _TOUCH.rowcount(conn, {"tenant": "a", "at": 9.0}) == 3
        expected = conn.execute(
            select(_KEKS.c.tenant, _KEKS.c.version, _KEKS.c.created_at).order_by(
                "tenant", "version"
            )
        ).all()
    assert [tuple(r) for r in expected] == [
        ("a", 1, 9.0),
        ("a", 2, 9.0),
        ("a", 3, 9.0),
        ("b", 1, 1.5),
    ]


def test_driver_errors_are_sqlalchemys_classes_without_parameters(engine: Engine) -> None:
    with engine.begin() as conn:
        _PUT.many(conn, [_kek("a", 1)])
    with pytest.raises(IntegrityError) as caught, engine.begin() as conn:
        _PUT.rowcount(conn, {**_kek(SECRET, 1), "tenant": "a", "wrapped": SECRET.encode()})
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)
    assert caught.value.hide_parameters
    with engine.begin() as conn:  # the failed transaction left nothing behind
        assert _VERSIONS.scalars(conn, {"tenant": "a"}) == [1]


def test_cursor_listeners_see_driver_statements(engine: Engine) -> None:
    seen: list[str] = []

    def listener(_c: Any, _cur: Any, sql: str, *_rest: Any) -> None:
        seen.append(sql.split()[0])

    event.listen(engine, "before_cursor_execute", listener)
    try:
        with engine.begin() as conn:
            _PUT.many(conn, [_kek("a", 1)])
            _VERSIONS.scalars(conn, {"tenant": "a"})
    finally:
        event.remove(engine, "before_cursor_execute", listener)
    assert seen == ["INSERT", "SELECT"]


@pytest.mark.postgres
@pytest.mark.skipif(PG_URL is None, reason="COATCHECK_TEST_PG_URL not set")
def test_a_killed_connection_is_invalidated_and_replaced() -> None:
    assert PG_URL is not None
    engine = make_engine(PG_URL, pool_size=1, max_overflow=0)
    head = _driver.Statement(select(AuditHead.__table__.c.id).limit(1))
    try:
        pid = kill_pooled_backend(engine)
        with pytest.raises(OperationalError) as caught, engine.connect() as conn:
            head.rows(conn, {})
        assert caught.value.connection_invalidated
        with engine.connect() as conn:  # the pool replaced the dead connection
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() != pid
    finally:
        engine.dispose()
