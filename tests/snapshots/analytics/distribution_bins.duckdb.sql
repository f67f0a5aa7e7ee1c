WITH matching AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= TIMESTAMPTZ '2026-11-02 00:00:00+00:00'
    AND "timestamp" < TIMESTAMPTZ '2026-11-09 00:00:00+00:00'
    AND user_id IS NOT NULL
    AND "event" = 'buy_wealth'
),
facts AS (
  SELECT user_id AS cust_no, CASE WHEN TRY_CAST(json_extract_string(properties, '$."amount"') AS DOUBLE) IS NULL THEN NULL WHEN TRY_CAST(json_extract_string(properties, '$."amount"') AS DOUBLE) < 2000 THEN 0 WHEN TRY_CAST(json_extract_string(properties, '$."amount"') AS DOUBLE) < 4000.5 THEN 1 ELSE 2 END AS bin
  FROM matching
)
SELECT bin, CASE bin WHEN 0 THEN '< 2000' WHEN 1 THEN '[2000, 4000.5)' WHEN 2 THEN '>= 4000.5' ELSE NULL END AS label, count(*) AS events, count(DISTINCT cust_no) AS customers
FROM facts
GROUP BY bin
ORDER BY bin
