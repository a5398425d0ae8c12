-- name: emit_events
-- Write events of one type into the outbox (:ids, :subject_ids and the elements of the
-- JSON array :data side by side) and one pending delivery per endpoint that wants each, in
-- the caller's transaction (so they exist if and only if the change commits). The events
-- about a post take its next sequence numbers, in the order given; the row lock that takes
-- also orders the post's events by commit. Dispatchers hear of new deliveries at commit.
WITH input AS (
    SELECT
        k.id, k.subject_id, d.data, k.n,
        row_number() OVER (PARTITION BY k.subject_id ORDER BY k.n) AS nth,
        count(*) OVER (PARTITION BY k.subject_id) AS of_subject
    FROM unnest(CAST(:ids AS uuid[]), CAST(:subject_ids AS uuid[]))
        WITH ORDINALITY AS k (id, subject_id, n)
    JOIN jsonb_array_elements(CAST(:data AS jsonb)) WITH ORDINALITY AS d (data, n)
        ON d.n = k.n
), seq AS (
    -- By each post's key (migration 0009): a join here could scan the workspace's posts.
    SELECT subject_id AS id, crier_advance_event_sequence(subject_id, count(*)) AS last
    FROM input
    WHERE subject_id IS NOT NULL
    GROUP BY subject_id
), event AS (
    INSERT INTO webhook_events (workspace_id, id, type, subject_id, sequence, payload)
    SELECT
        crier_current_workspace(), i.id, CAST(:type AS text), i.subject_id, s.n,
        jsonb_build_object(
            'type', CAST(:type AS text), 'timestamp', CAST(:timestamp AS text),
            'sequence', s.n, 'data', i.data
        )
    FROM input AS i
    LEFT JOIN seq ON seq.id = i.subject_id
    CROSS JOIN LATERAL (SELECT seq.last - i.of_subject + i.nth AS n) AS s
    ORDER BY i.n
    RETURNING workspace_id, id, subject_id, sequence
), deliveries AS (
    INSERT INTO webhook_deliveries
        (workspace_id, id, event_id, endpoint_id, subject_id, sequence, next_attempt_at)
    SELECT e.workspace_id, crier_uuid7(), event.id, e.id, event.subject_id, event.sequence, :now
    FROM event
    JOIN webhook_endpoints AS e ON e.workspace_id = event.workspace_id
    WHERE e.enabled
      AND CASE
          WHEN CAST(:endpoint_id AS uuid) IS NOT NULL THEN e.id = CAST(:endpoint_id AS uuid)
          ELSE e.event_types IS NULL OR CAST(:type AS text) = ANY (e.event_types)
      END
    RETURNING 1
)
SELECT
    (SELECT count(*) FROM event) AS events,
    (SELECT count(*) FROM deliveries) AS deliveries,
    CASE WHEN EXISTS (SELECT 1 FROM deliveries) THEN pg_notify('crier_webhooks', '') END

-- name: claim_due_deliveries
-- Lease due deliveries of enabled endpoints, across workspaces, as the scheduler role:
-- for each endpoint (in random order, so none waits behind the others), its oldest due
-- deliveries, at most the calls it may still take from this dispatcher (`busy_room` for
-- the endpoints in `busy_ids`, which it is calling already; `per_endpoint` for the others).
-- A delivery waits while an earlier event of the same post to the same endpoint is
-- pending, so each receiver gets a post's events in sequence order. Each endpoint costs one
-- index probe, however long another endpoint's backlog.
UPDATE webhook_deliveries AS d
SET lease_owner = :worker, lease_expires_at = :lease_until
FROM (
    SELECT due_here.workspace_id, due_here.id
    FROM webhook_endpoints AS e
    LEFT JOIN unnest(CAST(:busy_ids AS uuid[]), CAST(:busy_room AS int[]))
        AS busy (endpoint_id, room) ON busy.endpoint_id = e.id
    CROSS JOIN LATERAL (
        SELECT r.workspace_id, r.id
        FROM webhook_deliveries AS r
        WHERE r.workspace_id = e.workspace_id
          AND r.endpoint_id = e.id
          AND r.status = 'pending'
          AND r.next_attempt_at <= :now
          AND (r.lease_expires_at IS NULL OR r.lease_expires_at < :now)
          AND NOT EXISTS (
              SELECT 1 FROM webhook_deliveries AS p
              WHERE p.workspace_id = r.workspace_id
                AND p.endpoint_id = r.endpoint_id
                AND p.subject_id = r.subject_id
                AND p.sequence < r.sequence
                AND p.status = 'pending'
          )
        ORDER BY r.next_attempt_at
        LIMIT coalesce(busy.room, :per_endpoint)
        FOR UPDATE SKIP LOCKED
    ) AS due_here
    WHERE coalesce(busy.room, :per_endpoint) > 0
    ORDER BY random()
    LIMIT :limit
) AS due
WHERE d.workspace_id = due.workspace_id AND d.id = due.id
RETURNING d.workspace_id, d.id, d.endpoint_id

-- name: load_deliveries
-- What the calls need: each delivery's state, its endpoint's URL and sealed secrets, and the
-- event's payload as the exact text to send.
SELECT
    d.id, d.status, d.lease_owner, d.attempts, v.id AS event_id, v.payload::text AS body,
    e.url, e.secret, e.previous_secret, e.previous_secret_expires_at
FROM webhook_deliveries AS d
JOIN webhook_endpoints AS e ON e.workspace_id = d.workspace_id AND e.id = d.endpoint_id
JOIN webhook_events AS v ON v.workspace_id = d.workspace_id AND v.id = d.event_id
WHERE d.id = ANY (CAST(:ids AS uuid[]))

-- name: record_successes
-- Calls answered with a 2xx: each delivery done and its attempt written, and the endpoints'
-- runs of failures (if any) over. Only what this dispatcher still leases is recorded.
WITH answered AS (
    SELECT *
    FROM unnest(
        CAST(:ids AS uuid[]), CAST(:attempt_ids AS uuid[]), CAST(:numbers AS int[]),
        CAST(:started AS timestamptz[]), CAST(:durations AS int[]), CAST(:codes AS int[]),
        CAST(:finished AS timestamptz[])
    ) AS x (id, attempt_id, number, started_at, duration_ms, status_code, finished_at)
), done AS (
    UPDATE webhook_deliveries AS d
    SET status = 'succeeded', attempts = a.number, last_status_code = a.status_code,
        last_error = NULL, succeeded_at = a.finished_at, next_attempt_at = NULL,
        lease_owner = NULL, lease_expires_at = NULL, updated_at = now()
    FROM answered AS a
    WHERE d.workspace_id = crier_current_workspace() AND d.id = a.id
      AND d.status = 'pending' AND d.lease_owner = :worker
    RETURNING d.workspace_id, d.id, d.endpoint_id
), attempts AS (
    INSERT INTO webhook_attempts
        (workspace_id, id, delivery_id, number, started_at, duration_ms, status_code)
    SELECT done.workspace_id, a.attempt_id, a.id, a.number, a.started_at, a.duration_ms,
        a.status_code
    FROM answered AS a JOIN done ON done.id = a.id
)
UPDATE webhook_endpoints AS e
SET failing_since = NULL, updated_at = now()
FROM (SELECT DISTINCT workspace_id, endpoint_id FROM done) AS ok
WHERE e.workspace_id = ok.workspace_id AND e.id = ok.endpoint_id
  AND e.failing_since IS NOT NULL

-- name: purge_webhook_events
-- Forget webhook events older than :before in every workspace, with their deliveries and
-- attempts, at most :limit at a time; never one with a delivery still pending (the policy
-- also keeps everything younger than two days). Runs as crier_scheduler.
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

-- name: latest_post_events
-- For each post among :posts, the type of its latest event among :types.
SELECT DISTINCT ON (subject_id) subject_id, type FROM webhook_events
WHERE subject_id = ANY (CAST(:posts AS uuid[])) AND type = ANY (CAST(:types AS text[]))
ORDER BY subject_id, sequence DESC
