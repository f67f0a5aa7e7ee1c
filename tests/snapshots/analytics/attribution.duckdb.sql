WITH scanned AS (
  SELECT user_id, "timestamp", "event", properties, message_id
  FROM events
  WHERE "timestamp" >= TIMESTAMPTZ '2026-10-26 00:00:00+00:00'
    AND "timestamp" < TIMESTAMPTZ '2026-11-09 00:00:00+00:00'
    AND user_id IS NOT NULL
    AND "event" IN ('buy_wealth', 'touch_delivered')
),
conversions AS (
  SELECT user_id AS cust_no, "timestamp" AS ts, message_id AS conversion, TRY_CAST(json_extract_string(properties, '$."amount"') AS DOUBLE) AS value FROM scanned
  WHERE "event" = 'buy_wealth' AND "timestamp" >= TIMESTAMPTZ '2026-11-02 00:00:00+00:00'
),
touches AS (
  SELECT user_id AS cust_no, "timestamp" AS ts, message_id AS touch, json_extract_string(properties, '$."campaign"') AS channel FROM scanned WHERE "event" = 'touch_delivered'
),
pairs AS (
  SELECT c.conversion, c.cust_no, c.value, t.channel, epoch(c.ts) - epoch(t.ts) AS age,
    row_number() OVER (PARTITION BY c.conversion ORDER BY t.ts, t.touch) AS k, count(*) OVER (PARTITION BY c.conversion) AS n
  FROM conversions AS c JOIN touches AS t ON t.cust_no = c.cust_no
  WHERE t.ts <= c.ts AND t.ts > c.ts - INTERVAL 604800 SECOND
),
weighted AS (
  SELECT conversion, cust_no, value, channel, CASE WHEN k = 1 THEN 1.0 ELSE 0.0 END AS w_first, CASE WHEN k = n THEN 1.0 ELSE 0.0 END AS w_last, 1.0 / CAST(n AS DOUBLE) AS w_linear, CASE WHEN n = 1 THEN 1.0 WHEN n = 2 THEN 0.5 WHEN k = 1 OR k = n THEN 0.4 ELSE 0.2 / CAST(n - 2 AS DOUBLE) END AS w_position, pow(2, -age / 86400.0) / sum(pow(2, -age / 86400.0)) OVER (PARTITION BY conversion) AS w_time_decay FROM pairs
),
facts AS (
  SELECT cust_no, 'touch' AS kind, channel FROM weighted
  UNION ALL SELECT cust_no, 'unattributed' AS kind, CAST(NULL AS VARCHAR) AS channel FROM conversions
  WHERE conversion NOT IN (SELECT conversion FROM pairs)
)
SELECT * FROM (
  SELECT 'touch' AS kind, channel, count(DISTINCT conversion) AS conversions, sum(w_first) AS first, sum(w_first * CAST(coalesce(value, 0) AS DOUBLE)) AS value_first, sum(w_last) AS last, sum(w_last * CAST(coalesce(value, 0) AS DOUBLE)) AS value_last, sum(w_linear) AS linear, sum(w_linear * CAST(coalesce(value, 0) AS DOUBLE)) AS value_linear, sum(w_position) AS position, sum(w_position * CAST(coalesce(value, 0) AS DOUBLE)) AS value_position, sum(w_time_decay) AS time_decay, sum(w_time_decay * CAST(coalesce(value, 0) AS DOUBLE)) AS value_time_decay
  FROM weighted GROUP BY channel
  UNION ALL SELECT 'unattributed' AS kind, CAST(NULL AS VARCHAR) AS channel, count(*) AS conversions, 0.0 AS first, 0.0 AS value_first, 0.0 AS last, 0.0 AS value_last, 0.0 AS linear, 0.0 AS value_linear, 0.0 AS position, 0.0 AS value_position, 0.0 AS time_decay, 0.0 AS value_time_decay
  FROM conversions WHERE conversion NOT IN (SELECT conversion FROM pairs)
) AS credit
ORDER BY kind, channel
