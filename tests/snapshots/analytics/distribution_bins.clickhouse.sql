WITH matching AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= toDateTime64('2026-11-02 00:00:00.000000', 6, 'UTC')
    AND "timestamp" < toDateTime64('2026-11-09 00:00:00.000000', 6, 'UTC')
    AND user_id IS NOT NULL
    AND "event" = 'buy_wealth'
),
facts AS (
  SELECT user_id AS cust_no, CASE WHEN toFloat64OrNull(JSONExtract(properties, 'amount', 'Nullable(String)')) IS NULL THEN NULL WHEN toFloat64OrNull(JSONExtract(properties, 'amount', 'Nullable(String)')) < 2000 THEN 0 WHEN toFloat64OrNull(JSONExtract(properties, 'amount', 'Nullable(String)')) < 4000.5 THEN 1 ELSE 2 END AS bin
  FROM matching
)
SELECT bin, CASE bin WHEN 0 THEN '< 2000' WHEN 1 THEN '[2000, 4000.5)' WHEN 2 THEN '>= 4000.5' ELSE NULL END AS label, count(*) AS events, count(DISTINCT cust_no) AS customers
FROM facts
GROUP BY bin
ORDER BY bin
SETTINGS join_use_nulls = 1
