-- name: take_sequences
-- The next :count numbers of the current workspace's review feed (the last one returned).
-- The row stays locked until the transaction ends, so a later taker waits for this one to
-- commit: numbers commit in the order they were taken, and a reader who has seen number N
-- committed has seen every number below it that will ever commit.
INSERT INTO review_feeds (workspace_id, id, last_sequence)
VALUES (crier_current_workspace(), crier_uuid7(), :count)
ON CONFLICT (workspace_id)
DO UPDATE SET last_sequence = review_feeds.last_sequence + :count, updated_at = now()
RETURNING last_sequence

-- name: committed_sequence
-- The last number of the current workspace's feed that has committed (0 before any).
SELECT coalesce(
    (SELECT last_sequence FROM review_feeds WHERE workspace_id = crier_current_workspace()), 0
)

-- name: due_review_syncs
-- Locations of any workspace whose review sync is due and that no worker holds, the
-- longest due first. Runs as crier_scheduler, which sees nothing else of them.
SELECT workspace_id, social_account_id FROM review_syncs
WHERE next_sync_at <= :now
  AND (leased_until IS NULL OR leased_until <= :now)
ORDER BY next_sync_at
LIMIT :limit
