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

-- name: due_review_replies
-- Replies of any workspace due to be sent, the longest due first: not held by a worker, and
-- of a review none of whose other replies a worker holds (a review's replies go out one at
-- a time, in the order they were asked for). Runs as crier_scheduler, which sees nothing
-- of their text.
SELECT r.workspace_id, r.id FROM review_replies r
WHERE r.status = 'pending' AND r.next_attempt_at <= :now
  AND (r.leased_until IS NULL OR r.leased_until <= :now)
  AND NOT EXISTS (
      SELECT FROM review_replies o
      WHERE o.workspace_id = r.workspace_id AND o.review_id = r.review_id AND o.id <> r.id
        AND o.leased_until > :now
  )
ORDER BY r.next_attempt_at
LIMIT :limit
