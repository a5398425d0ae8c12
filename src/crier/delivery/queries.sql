-- name: create_deliveries
-- One delivery per target of the posts :post_ids that has none yet (as crier_app, in the
-- posts' workspace). A post prepared again after a worker died keeps its deliveries.
INSERT INTO deliveries (workspace_id, id, post_id, post_target_id, social_account_id, platform)
SELECT t.workspace_id, crier_uuid7(), t.post_id, t.id, t.social_account_id, a.platform
FROM post_targets AS t
JOIN social_accounts AS a ON a.workspace_id = t.workspace_id AND a.id = t.social_account_id
WHERE t.post_id = ANY (CAST(:post_ids AS uuid[]))
ON CONFLICT (workspace_id, post_target_id) DO NOTHING

-- name: lock_due_deliveries
-- The deliveries still to send and due by :now of those of the posts :post_ids that are
-- :worker's and publishing (after begin_publishing, in the same transaction), locked in
-- id order: the deliveries of a post that is not :worker's are neither read nor locked.
SELECT d.id, d.post_id, d.social_account_id, d.platform, d.attempts, d.uncertain,
       t.platform_settings
FROM deliveries AS d
JOIN post_targets AS t ON t.workspace_id = d.workspace_id AND t.id = d.post_target_id
JOIN posts AS p ON p.workspace_id = d.workspace_id AND p.id = d.post_id
WHERE d.workspace_id = crier_current_workspace()
  AND d.post_id = ANY (CAST(:post_ids AS uuid[]))
  AND p.status = 'publishing'
  AND p.lease_owner = :worker
  AND d.status IN ('pending', 'sending')
  AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= :now)
ORDER BY d.id
FOR UPDATE OF d

-- name: sending_accounts
-- The accounts that the deliveries of the posts :post_ids still to send go out as: what
-- sending needs of them (tokens sealed), and what decides whether they can be sent.
SELECT a.id, a.status, a.token_expires_at, a.access_token, a.refresh_token, a.external_id,
       a.server_url
FROM social_accounts AS a
WHERE a.workspace_id = crier_current_workspace()
  AND a.id IN (
      SELECT d.social_account_id
      FROM deliveries AS d
      WHERE d.workspace_id = crier_current_workspace()
        AND d.post_id = ANY (CAST(:post_ids AS uuid[]))
        AND d.status IN ('pending', 'sending')
  )

-- name: sending_media
-- The media that the posts :post_ids attach (those still in the workspace): what shaping
-- their deliveries needs of them.
SELECT m.id, m.category, m.content_type, m.storage_path, m.alt_text, m.variants
FROM media_assets AS m
WHERE m.workspace_id = crier_current_workspace()
  AND m.id IN (
      SELECT CAST(jsonb_array_elements_text(p.payload -> 'media_ids') AS uuid)
      FROM posts AS p
      WHERE p.workspace_id = crier_current_workspace()
        AND p.id = ANY (CAST(:post_ids AS uuid[]))
  )

-- name: begin_attempts
-- Before anything is sent: write down the next attempt of each delivery :delivery_ids,
-- under the ids :ids side by side, started at :started_at; until its answer comes, each
-- delivery is uncertain. Set-based, so the same text serves any number of deliveries.
WITH sending AS (
    UPDATE deliveries
    SET attempts = attempts + 1, status = 'sending', uncertain = true, updated_at = :started_at
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
    error_message = NULL, uncertain = false, updated_at = :now
FROM sent
WHERE d.workspace_id = crier_current_workspace() AND d.id = sent.delivery_id
