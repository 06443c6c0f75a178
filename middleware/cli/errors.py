"""One line on stderr and exit 2 for every failure a command meets before it can work.

A bad setting, an unreadable config, a wrong master key, an unreachable database, a file
that cannot be written, a port already taken: each is the operator's to fix, and a
60-line traceback hides the one line that says what.  `one_line_errors()` turns the
known failure classes into `error: <what>: <why>`; the text names settings, files and
exception classes, and the database's own first line (never a value: nothing has been
read from a message yet, and SQLAlchemy's statement parameters are left out).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from alembic.util import CommandError
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from coatcheck.middleware.detect import DetectError
from coatcheck.vault.errors import VaultError

__all__ = ["fail", "one_line_errors"]

_MAX = 300


def fail(message: str, code: int = 2) -> NoReturn:
    """Print `error: message` (one line) and exit with `code`."""
    line = " ".join(message.split())[:_MAX]
    typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code)


def _database(exc: SQLAlchemyError) -> str:
    cause = getattr(exc, "orig", None) or exc
    first = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"COATCHECK_DATABASE_URL: the database failed ({type(cause).__name__}: {first})"


@contextmanager
def one_line_errors() -> Iterator[None]:
    """Run a command's set-up; known failures end it with one line and exit 2."""
    try:
        yield
    except ValidationError as exc:  # pydantic's own text would quote the input
        first = exc.errors(include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or exc.title
        fail(f"{where}: {first['msg']}")
    except (ValueError, DetectError, VaultError) as exc:  # settings, config, keys
        fail(str(exc) or type(exc).__name__)
    except SQLAlchemyError as exc:
        fail(_database(exc))
    except CommandError as exc:  # alembic: e.g. a database newer than this code
        fail(f"COATCHECK_DATABASE_URL: migrations failed ({exc})")
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        fail(f"{where}{exc.strerror or type(exc).__name__}")
