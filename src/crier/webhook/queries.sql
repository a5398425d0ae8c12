-- name: emit_event
-- Write one event into the outbox and one pending delivery per endpoint that wants it, in
-- the caller's transaction (so the event exists if and only if the change commits). An
-- event about a post takes the post's next sequence number; the row lock that takes also
-- orders the post's events by commit. Dispatchers hear of new deliveries at commit.
WITH seq AS (
    UPDATE posts SET event_sequence = event_sequence + 1
    WHERE workspace_id = crier_current_workspace() AND id = CAST(:subject_id AS uuid)
    RETURNING event_sequence
), event AS (
    INSERT INTO webhook_events (workspace_id, id, type, subject_id, sequence, payload)
    SELECT
        crier_current_workspace(), :id, CAST(:type AS text), CAST(:subject_id AS uuid), s.n,
        jsonb_build_object(
            'type', CAST(:type AS text), 'timestamp', CAST(:timestamp AS text),
            'sequence', s.n, 'data', CAST(:data AS jsonb)
        )
    FROM (SELECT (SELECT event_sequence FROM seq) AS n) AS s
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
    (SELECT sequence FROM event) AS sequence,
    (SELECT count(*) FROM deliveries) AS deliveries,
    CASE WHEN EXISTS (SELECT 1 FROM deliveries) THEN pg_notify('crier_webhooks', '') END

-- name: claim_due_deliveries
-- Lease due deliveries of enabled endpoints, across workspaces, as the scheduler role. A
-- delivery waits while an earlier event of the same post to the same endpoint is pending,
-- so each receiver gets a post's events in sequence order. No endpoint gets more than
-- `per_endpoint` calls in flight from one dispatcher: `busy_ids` are the endpoints this one
-- is calling already, with `busy_room` the calls each may still take.
UPDATE webhook_deliveries AS d
SET lease_owner = :worker, lease_expires_at = :lease_until
FROM (
    SELECT c.workspace_id, c.id
    FROM webhook_deliveries AS c
    WHERE (c.workspace_id, c.id) IN (
        SELECT ranked.workspace_id, ranked.id
        FROM (
            SELECT
                r.workspace_id, r.id, r.endpoint_id,
                row_number() OVER (
                    PARTITION BY r.workspace_id, r.endpoint_id ORDER BY r.next_attempt_at, r.id
                ) AS place
            FROM webhook_deliveries AS r
            JOIN webhook_endpoints AS e
                ON e.workspace_id = r.workspace_id AND e.id = r.endpoint_id
            WHERE r.status = 'pending'
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
        ) AS ranked
        LEFT JOIN unnest(CAST(:busy_ids AS uuid[]), CAST(:busy_room AS int[]))
            AS busy (endpoint_id, room) ON busy.endpoint_id = ranked.endpoint_id
        WHERE ranked.place <= coalesce(busy.room, :per_endpoint)
    )
      AND c.status = 'pending'
      AND (c.lease_expires_at IS NULL OR c.lease_expires_at < :now)
    ORDER BY c.next_attempt_at
    LIMIT :limit
    FOR UPDATE OF c SKIP LOCKED
) AS due
WHERE d.workspace_id = due.workspace_id AND d.id = due.id
RETURNING d.workspace_id, d.id, d.endpoint_id
