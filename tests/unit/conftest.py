"""The unit tests' store: opened (migrated) on the test's database, closed after."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from service.store.store import Store


@pytest.fixture
async def store(migrated_database_url: str) -> AsyncIterator[Store]:
    s = Store(migrated_database_url)
    await s.open()
    try:
        yield s
    finally:
        await s.close()
