"""Settling fired posts off the firing path, coalesced by workspace.

Once a firing's calls are answered, its posts still have to be settled: the successes
recorded, the posts published, failed or held for a retry, and all of it announced
(`Sender.settle`). That is most of the work a post costs, and none of it makes a post
later: the platform has it. So a firing hands its posts to the `Settler` and frees its slot
for the next. A workspace's round starts `SETTLE_WINDOW` after the first firing handed over,
and what is handed over meanwhile, or while that round is being settled, is settled with it
or in the next round, in one transaction (at most `SETTLE_BATCH` posts a transaction). Under
load the rounds grow and the transactions per post fall, and with them the work that would
otherwise compete with the posts falling due.

Nothing is lost if the worker dies before a round commits: the deliveries were written down
as being sent before the calls, so whoever takes the posts over looks them up on the
platform by their idempotency keys.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from crier.delivery.repository import Sent
from crier.scheduler.service import Fired, Held, Sender

SETTLE_BATCH = 500
"""Posts settled in one transaction, at most."""
SETTLE_WINDOW = 0.05
"""Seconds a workspace's first round waits for more firings to join it: a post is settled
that much later, and at 200 posts a second its worker makes a fraction of the transactions."""
SETTLING_AT_ONCE = 2
"""Settling transactions under way at once, across workspaces: the firing path keeps the
rest of the connection pool."""

_Waiting = tuple[Fired, "asyncio.Future[dict[UUID, Held | None]]"]


class Settler:
    """Settles what a worker fired, a workspace's posts together, a round at a time."""

    def __init__(self, sender: Sender, *, at_once: int = SETTLING_AT_ONCE) -> None:
        self.sender = sender
        self._waiting: dict[UUID, list[_Waiting]] = {}
        self._rounds: dict[UUID, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(at_once)

    async def settle(self, fired: Fired) -> dict[UUID, Held | None]:
        """Settle `fired` with whatever else of its workspace is waiting: for each of its
        posts, when it is next due (a retry), or None once settled or not this worker's.
        Raises what the round's transaction raised (the posts are then fired again)."""
        done: asyncio.Future[dict[UUID, Held | None]] = asyncio.get_running_loop().create_future()
        workspace = fired.workspace_id
        self._waiting.setdefault(workspace, []).append((fired, done))
        if workspace not in self._rounds:
            self._rounds[workspace] = asyncio.create_task(self._settle_workspace(workspace))
        return await done

    async def _settle_workspace(self, workspace_id: UUID) -> None:
        """Rounds for `workspace_id` until nothing of it waits."""
        try:
            await asyncio.sleep(SETTLE_WINDOW)
            while waiting := self._waiting.pop(workspace_id, []):
                await asyncio.gather(*(self._round(workspace_id, b) for b in _batches(waiting)))
        finally:
            del self._rounds[workspace_id]

    async def _round(self, workspace_id: UUID, waiting: list[_Waiting]) -> None:
        post_ids = [p for fired, _ in waiting for p in fired.post_ids]
        succeeded: list[Sent] = [s for fired, _ in waiting for s in fired.succeeded]
        try:
            async with self._slots:
                after = await self.sender.settle(workspace_id, post_ids, succeeded)
        except BaseException as error:  # each firing handles it (DBAPIError: fired again)
            for _, done in waiting:
                if done.done():
                    continue
                if isinstance(error, Exception):
                    done.set_exception(error)
                else:
                    done.cancel()
            if not isinstance(error, Exception):
                raise
            return
        for fired, done in waiting:
            if not done.done():
                done.set_result({p: after[p] for p in fired.post_ids})


def _batches(waiting: list[_Waiting]) -> list[list[_Waiting]]:
    """`waiting` in runs of at most `SETTLE_BATCH` posts (a firing is never split)."""
    batches: list[list[_Waiting]] = [[]]
    size = 0
    for item in waiting:
        count = len(item[0].post_ids)
        if batches[-1] and size + count > SETTLE_BATCH:
            batches.append([])
            size = 0
        batches[-1].append(item)
        size += count
    return batches
