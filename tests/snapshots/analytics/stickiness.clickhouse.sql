WITH matching AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= toDateTime64('2026-11-02 00:00:00.000000', 6, 'UTC')
    AND "timestamp" < toDateTime64('2026-11-09 00:00:00.000000', 6, 'UTC')
    AND user_id IS NOT NULL
    AND "event" = 'login'
),
facts AS (
  SELECT user_id AS cust_no, count(DISTINCT toDate32("timestamp", 'UTC')) AS k
  FROM matching
  GROUP BY user_id
)
SELECT k, count(*) AS customers
FROM facts
GROUP BY k
ORDER BY k
SETTINGS join_use_nulls = 1
