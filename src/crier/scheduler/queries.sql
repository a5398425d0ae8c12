-- name: claim_due_posts
-- Take up to :limit posts for worker :worker until :lease_until: scheduled posts within the
-- lock window (:horizon, now + crier.post.lifecycle.LOCK_WINDOW) become queued, and queued or publishing
-- posts whose lease expired before :now change hands. SKIP LOCKED lets any number of
-- workers claim at once without waiting on, or taking, each other's posts. Runs as
-- crier_scheduler, which sees only these columns.
WITH due AS (
    SELECT workspace_id, id
    FROM posts
    WHERE (status = 'scheduled' AND publish_at <= :horizon)
       OR (status IN ('queued', 'publishing') AND lease_expires_at <= :now)
    ORDER BY publish_at
    LIMIT :limit
    FOR UPDATE SKIP LOCKED
)
UPDATE posts AS p
SET status = CASE WHEN p.status = 'scheduled' THEN 'queued' ELSE p.status END,
    locked_at = COALESCE(p.locked_at, :now),
    lease_owner = :worker,
    lease_expires_at = :lease_until,
    version = p.version + CASE WHEN p.status = 'scheduled' THEN 1 ELSE 0 END,
    updated_at = now()
FROM due
WHERE p.workspace_id = due.workspace_id AND p.id = due.id
RETURNING p.workspace_id, p.id, p.publish_at, p.status

-- name: renew_leases
-- Extend the leases :worker still holds, so that no other worker takes them over. A post
-- locked at this moment (being sent or settled) is skipped, not waited for: waiting would
-- hold up every other post's sending behind it, and the next renewal, well within the
-- lease, takes it.
UPDATE posts
SET lease_expires_at = :lease_until
WHERE (workspace_id, id) IN (
    SELECT workspace_id, id FROM posts
    WHERE lease_owner = :worker AND status IN ('queued', 'publishing')
    FOR UPDATE SKIP LOCKED
)
RETURNING workspace_id, id

-- name: beat
-- Worker :worker is alive at :now (it started at :now if this is its first heartbeat).
INSERT INTO scheduler_workers (id, started_at, seen_at) VALUES (:worker, :now, :now)
ON CONFLICT (id) DO UPDATE SET seen_at = EXCLUDED.seen_at
WHERE scheduler_workers.seen_at < EXCLUDED.seen_at

-- name: take_from_the_dead
-- Workers not heard from since :stale are taken for dead, once (their heartbeats go), and
-- the posts they held that are not being sent have their leases end at :now, so the claim
-- that follows takes them. A post being sent (publishing) keeps its lease: the dead
-- worker's call may still reach the network, and the lease outlasts any call.
WITH dead AS (
    DELETE FROM scheduler_workers WHERE seen_at <= :stale RETURNING id
)
UPDATE posts SET lease_expires_at = :now
WHERE status = 'queued' AND lease_expires_at > :now
  AND lease_owner IN (SELECT id FROM dead)
RETURNING workspace_id, id

-- name: release
-- Worker :worker stops: its heartbeat goes, and the posts it held that are not being sent
-- have their leases end at :now, for the other workers to take at once.
WITH gone AS (
    DELETE FROM scheduler_workers WHERE id = :worker RETURNING id
)
UPDATE posts SET lease_expires_at = :now
WHERE status = 'queued' AND lease_owner = :worker AND lease_expires_at > :now
RETURNING workspace_id, id

-- name: queue_depth
-- Posts due within the lock horizon or in flight, across workspaces (for /metrics).
SELECT count(*) FROM posts
WHERE (status = 'scheduled' AND publish_at <= :horizon)
   OR status IN ('queued', 'publishing')

-- name: accounts_to_refresh
-- Active accounts, of any workspace, whose tokens expire before :before and that no worker
-- is refreshing, soonest first. Runs as crier_scheduler, which sees no token.
SELECT workspace_id, id FROM social_accounts
WHERE status = 'active'
  AND token_expires_at < :before
  AND (refreshing_until IS NULL OR refreshing_until <= :now)
ORDER BY token_expires_at
LIMIT :limit
