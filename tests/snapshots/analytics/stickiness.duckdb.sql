WITH matching AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= TIMESTAMPTZ '2026-11-02 00:00:00+00:00'
    AND "timestamp" < TIMESTAMPTZ '2026-11-09 00:00:00+00:00'
    AND user_id IS NOT NULL
    AND "event" = 'login'
),
facts AS (
  SELECT user_id AS cust_no, count(DISTINCT CAST(timezone('UTC', "timestamp") AS DATE)) AS k
  FROM matching
  GROUP BY user_id
)
SELECT k, count(*) AS customers
FROM facts
GROUP BY k
ORDER BY k
