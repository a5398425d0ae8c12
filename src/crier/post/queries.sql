-- name: insert_post
-- A new post with its targets and media links, in one statement. With `scheduled_limit`,
-- the transaction is held to that monthly limit (checked at commit, migration 0008). The
-- media links' trigger keeps each asset's usage count. The post starts at version 1.
WITH post AS (
    INSERT INTO posts (
        workspace_id, id, author_id, status, publish_at, timezone, payload, version,
        created_at, updated_at
    )
    VALUES (
        :workspace_id, :id, :author_id, :status, :publish_at, :timezone,
        CAST(:payload AS jsonb), 1, :created_at, :created_at
    )
    RETURNING workspace_id, id
), targets AS (
    INSERT INTO post_targets (workspace_id, id, post_id, social_account_id, platform_settings)
    SELECT post.workspace_id, t.id, post.id, t.social_account_id, t.platform_settings
    FROM post, jsonb_to_recordset(CAST(:targets AS jsonb))
        AS t (id uuid, social_account_id uuid, platform_settings jsonb)
), media AS (
    INSERT INTO post_media (workspace_id, id, post_id, media_id)
    SELECT post.workspace_id, m.id, post.id, m.media_id
    FROM post, unnest(CAST(:media_link_ids AS uuid[]), CAST(:media_ids AS uuid[]))
        AS m (id, media_id)
)
SELECT
    post.id,
    CASE WHEN CAST(:scheduled_limit AS text) IS NOT NULL THEN
        set_config('crier.scheduled_posts_per_month', CAST(:scheduled_limit AS text), true)
    END AS scheduled_limit
FROM post

-- name: post_with_targets
-- One post with its targets (and each target's platform) as a JSON array, in one row.
SELECT
    p.id, p.status, p.payload, p.publish_at, p.timezone, p.author_id, p.version,
    p.created_at, p.updated_at, p.published_at, p.cancelled_at, p.cancelled_by,
    COALESCE(
        (
            SELECT json_agg(
                json_build_object(
                    'id', t.id, 'social_account_id', t.social_account_id,
                    'platform', a.platform, 'platform_settings', t.platform_settings
                )
                ORDER BY t.id
            )
            FROM post_targets AS t
            JOIN social_accounts AS a
                ON a.workspace_id = t.workspace_id AND a.id = t.social_account_id
            WHERE t.workspace_id = p.workspace_id AND t.post_id = p.id
        ),
        '[]'
    ) AS targets
FROM posts AS p
WHERE p.workspace_id = crier_current_workspace() AND p.id = :id

-- name: begin_publishing
-- The posts among :post_ids still :worker's to send, locked in id order, begin publishing
-- before anything of theirs is sent: the lifecycle's step queued -> publishing, taken in
-- bulk, at the same version (a locked post's ETag can change nothing; see
-- crier.post.lifecycle). Returns what sending them needs (as crier_app, in their
-- workspace).
WITH ours AS (
    SELECT id FROM posts
    WHERE workspace_id = crier_current_workspace()
      AND id = ANY (CAST(:post_ids AS uuid[]))
      AND status IN ('queued', 'publishing')
      AND lease_owner = :worker
    ORDER BY id
    FOR UPDATE
)
UPDATE posts AS p
SET status = 'publishing',
    updated_at = CASE WHEN p.status = 'queued' THEN :now ELSE p.updated_at END
FROM ours
WHERE p.workspace_id = crier_current_workspace() AND p.id = ours.id
RETURNING p.id, p.payload, p.publish_at
