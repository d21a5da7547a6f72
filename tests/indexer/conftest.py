"""Fixtures of the indexer tests: a second database of the same kind for fresh replays."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import PostgresServer


@pytest.fixture
def replay_url(database_url: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    """An empty database of the same kind as `database_url`, for indexing the chain afresh."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'replay.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database("r_" + uuid.uuid4().hex[:12])
    yield url
    server.drop_database(url)
