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

-- name: queue_depth
-- Posts due within the lock horizon or in flight, across workspaces (for /metrics).
SELECT count(*) FROM posts
WHERE (status = 'scheduled' AND publish_at <= :horizon)
   OR status IN ('queued', 'publishing')

-- name: purge_idempotency_keys
-- Forget stored idempotent responses past their retention, at most :limit at a time.
-- The policy lets crier_scheduler delete only rows whose expires_at has passed.
DELETE FROM idempotency_keys
WHERE (workspace_id, id) IN (
    SELECT workspace_id, id FROM idempotency_keys
    WHERE expires_at <= :now
    LIMIT :limit
)

-- name: create_deliveries
-- One delivery per target of the posts :post_ids that has none yet (as crier_app, in the
-- posts' workspace). A post prepared again after a worker died keeps its deliveries.
INSERT INTO deliveries (workspace_id, id, post_id, post_target_id, social_account_id, platform)
SELECT t.workspace_id, crier_uuid7(), t.post_id, t.id, t.social_account_id, a.platform
FROM post_targets AS t
JOIN social_accounts AS a ON a.workspace_id = t.workspace_id AND a.id = t.social_account_id
WHERE t.post_id = ANY (CAST(:post_ids AS uuid[]))
ON CONFLICT (workspace_id, post_target_id) DO NOTHING

-- name: lock_posts_to_send
-- The posts among :post_ids still :worker's to send, locked in id order (as crier_app, in
-- their workspace).
SELECT id, payload, publish_at
FROM posts
WHERE workspace_id = crier_current_workspace()
  AND id = ANY (CAST(:post_ids AS uuid[]))
  AND status IN ('queued', 'publishing')
  AND lease_owner = :worker
ORDER BY id
FOR UPDATE

-- name: lock_deliveries_to_send
-- The deliveries of :post_ids still to send and due by :now, locked in id order, each with
-- whether an attempt of it is still open (its outcome unknown).
SELECT
    d.id, d.post_id, d.social_account_id, d.platform, d.attempts, d.error_code,
    EXISTS (
        SELECT 1 FROM delivery_attempts AS a
        WHERE a.workspace_id = d.workspace_id AND a.delivery_id = d.id
          AND a.outcome = 'sending'
    ) AS open_attempt
FROM deliveries AS d
WHERE d.workspace_id = crier_current_workspace()
  AND d.post_id = ANY (CAST(:post_ids AS uuid[]))
  AND d.status IN ('pending', 'sending')
  AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= :now)
ORDER BY d.id
FOR UPDATE OF d

-- name: begin_sends
-- Before anything is sent (as crier_app, in the posts' workspace): mark the posts :post_ids
-- publishing, and write down the next attempt of each delivery :delivery_ids, under the
-- ids :ids side by side, started at :started_at. Set-based, so the same text serves any
-- number of posts.
WITH publishing AS (
    UPDATE posts SET status = 'publishing', updated_at = :started_at
    WHERE workspace_id = crier_current_workspace()
      AND id = ANY (CAST(:post_ids AS uuid[]))
      AND status <> 'publishing'
), sending AS (
    UPDATE deliveries
    SET attempts = attempts + 1, status = 'sending', updated_at = :started_at
    WHERE workspace_id = crier_current_workspace()
      AND id = ANY (CAST(:delivery_ids AS uuid[]))
    RETURNING workspace_id, id, attempts
)
INSERT INTO delivery_attempts (workspace_id, id, delivery_id, number, started_at)
SELECT s.workspace_id, a.id, s.id, s.attempts, :started_at
FROM sending AS s
JOIN unnest(CAST(:ids AS uuid[]), CAST(:delivery_ids AS uuid[])) AS a (id, delivery_id)
    ON a.delivery_id = s.id

-- name: record_published
-- Record what the platform answered for the deliveries :delivery_ids, sent in the attempts
-- :attempt_ids (side by side with :external_ids, :permalinks and :published_ats): the
-- attempts published, the deliveries published with the platform's ids (as crier_app, in
-- their workspace).
WITH sent AS (
    SELECT * FROM unnest(
        CAST(:delivery_ids AS uuid[]), CAST(:attempt_ids AS uuid[]),
        CAST(:external_ids AS text[]), CAST(:permalinks AS text[]),
        CAST(:published_ats AS timestamptz[])
    ) AS s (delivery_id, attempt_id, external_id, permalink, published_at)
), attempts AS (
    UPDATE delivery_attempts AS a
    SET outcome = 'published', finished_at = :now, http_status = 201, updated_at = :now
    FROM sent
    WHERE a.workspace_id = crier_current_workspace() AND a.id = sent.attempt_id
)
UPDATE deliveries AS d
SET status = 'published', external_id = sent.external_id, permalink = sent.permalink,
    published_at = sent.published_at, next_attempt_at = NULL, error_code = NULL,
    error_message = NULL, updated_at = :now
FROM sent
WHERE d.workspace_id = crier_current_workspace() AND d.id = sent.delivery_id

-- name: stale_accounts
-- The active accounts targeted by :post_ids whose token expires before :before.
SELECT DISTINCT a.id
FROM post_targets AS t
JOIN social_accounts AS a ON a.workspace_id = t.workspace_id AND a.id = t.social_account_id
WHERE t.post_id = ANY (CAST(:post_ids AS uuid[]))
  AND a.status = 'active'
  AND a.token_expires_at IS NOT NULL
  AND a.token_expires_at < :before

-- name: purge_webhook_events
-- Forget webhook events older than :before in every workspace, with their deliveries and
-- attempts, at most :limit at a time; never one with a delivery still pending (the policy
-- also keeps everything younger than two days).
DELETE FROM webhook_events
WHERE (workspace_id, id) IN (
    SELECT e.workspace_id, e.id FROM webhook_events AS e
    WHERE e.created_at < :before
      AND NOT EXISTS (
          SELECT 1 FROM webhook_deliveries AS d
          WHERE d.workspace_id = e.workspace_id AND d.event_id = e.id AND d.status = 'pending'
      )
    LIMIT :limit
)
