"""Background loops woken by PostgreSQL NOTIFY, with a poll as the safety net."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import psycopg
from sqlalchemy.exc import DBAPIError

from crier.kit.db.engine import Database


async def listen(
    db: Database, channel: str, wake: asyncio.Event, stop: asyncio.Event, listening: asyncio.Event
) -> None:
    """Set `wake` on every NOTIFY on `channel` until `stop`; `listening` once LISTEN is in
    place. A lost database is waited out (the caller's poll still runs meanwhile)."""
    while not stop.is_set():
        try:
            async with await db.listening_connection() as conn:
                await conn.execute(f"LISTEN {channel}")
                listening.set()
                async for _ in conn.notifies():
                    wake.set()
        except (DBAPIError, OSError, psycopg.Error):
            await asyncio.sleep(1)


async def first_of(*events: asyncio.Event, within: timedelta) -> None:
    """Wait until any of `events` is set, or `within` has passed."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(
            waiters, timeout=within.total_seconds(), return_when=asyncio.FIRST_COMPLETED
        )
    finally:
        for waiter in waiters:
            waiter.cancel()
