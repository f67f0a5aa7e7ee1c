SELECT c.cust_no
FROM customers AS c
WHERE c.cust_no IN (
    SELECT user_id FROM events
    WHERE "timestamp" > toDateTime64('2026-10-25 08:00:00.000000', 6, 'UTC') AND "timestamp" <= toDateTime64('2026-11-24 08:00:00.000000', 6, 'UTC') AND (("event" = 'fund_page_view' AND JSONExtract(properties, 'fund_type', 'Nullable(String)') = 'equity' AND toFloat64OrNull(JSONExtract(properties, 'amount', 'Nullable(String)')) > 100) OR ("event" = 'login'))
    GROUP BY user_id
    HAVING (countIf("event" = 'fund_page_view' AND JSONExtract(properties, 'fund_type', 'Nullable(String)') = 'equity' AND toFloat64OrNull(JSONExtract(properties, 'amount', 'Nullable(String)')) > 100) >= 3) AND (countIf("event" = 'login' AND "timestamp" > toDateTime64('2026-11-17 08:00:00.000000', 6, 'UTC') AND "timestamp" <= toDateTime64('2026-11-24 08:00:00.000000', 6, 'UTC')) >= 1)
  )
