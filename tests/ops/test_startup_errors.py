"""Every start-up failure is one line on stderr naming what to fix, and exit 2.

A bad master key used to print a 60-line traceback; so did an unreachable database, an
unwritable file or a port already taken.  All cases run at once (each is a process).
"""

from __future__ import annotations

import base64
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.ops.live import CLI, env_for


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def cases(tmp: Path, port: int) -> list[tuple[list[str], dict[str, str], str]]:
    """(command, environment changes, what the one line must name)."""
    short = base64.b64encode(b"x" * 8).decode()
    (tmp / "adir").mkdir()
    serve = ["serve", "--port", str(port)]
    return [
        (serve, {"COATCHECK_MASTER_KEY": "not base64 !!"}, "COATCHECK_MASTER_KEY"),
        (serve, {"COATCHECK_MASTER_KEY": short}, "COATCHECK_MASTER_KEY"),
        (serve, {"COATCHECK_KEY_FILE": str(tmp / "adir")}, "COATCHECK_KEY_FILE"),
        (serve, {"COATCHECK_PORT": "eighty"}, "COATCHECK_PORT"),
        (serve, {"COATCHECK_CONFIG": str(tmp / "missing.yml")}, "COATCHECK_CONFIG"),
        (
            serve,
            {"COATCHECK_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"},
            "COATCHECK_DATABASE_URL",
        ),
        (
            serve,
            {"COATCHECK_DATABASE_URL": f"sqlite:///{tmp / 'no' / 'such' / 'dir.db'}"},
            str(tmp / "no" / "such" / "dir.db"),  # the file it could not create
        ),
        (
            serve,
            {"COATCHECK_APIKEYS_FILE": str(tmp / "no" / "such" / "keys")},
            str(tmp / "no" / "such" / "keys"),
        ),
        (["serve", "--port", str(port)], {}, f"cannot listen on 127.0.0.1:{port}"),
        (
            ["db", "upgrade"],
            {"COATCHECK_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:1/none"},
            "COATCHECK_DATABASE_URL",
        ),
        (["keys", "rotate"], {"COATCHECK_MASTER_KEY": short}, "COATCHECK_MASTER_KEY"),
        (["redact"], {"COATCHECK_MASTER_KEY": "not base64 !!"}, "COATCHECK_MASTER_KEY"),
        (["apikey", "list"], {"COATCHECK_MASTER_KEY": short}, "COATCHECK_MASTER_KEY"),
    ]


def test_each_failure_is_one_line(tmp_path: Path, taken_port: int) -> None:
    runs = []
    for n, (argv, extra, names) in enumerate(cases(tmp_path, taken_port)):
        work = tmp_path / f"case{n}"
        work.mkdir()
        env = {**env_for(work), **extra}
        proc = subprocess.Popen(
            [*CLI, *argv],
            env=env,
            cwd=work,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        runs.append((argv, extra, names, proc))
    for argv, extra, names, proc in runs:
        out, err = proc.communicate(timeout=120)
        where = (argv, extra, err[-2000:])
        assert proc.returncode == 2, where
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), where
        assert names in lines[0], where
        assert "Traceback" not in out + err, where
        for value in extra.values():  # names the setting, never repeats a secret
            # (a key file's path is no secret: the line names the file and the fix)
            if "KEY" in str(names) and names != "COATCHECK_KEY_FILE" and value not in str(names):
                assert value not in err, where
