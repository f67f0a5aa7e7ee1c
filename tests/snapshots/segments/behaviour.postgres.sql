SELECT c.cust_no
FROM customers AS c
WHERE c.cust_no IN (
    SELECT user_id FROM events
    WHERE "timestamp" > TIMESTAMPTZ '2026-10-25 08:00:00+00:00' AND "timestamp" <= TIMESTAMPTZ '2026-11-24 08:00:00+00:00' AND (("event" = 'fund_page_view' AND (properties ->> 'fund_type') = 'equity' AND (CASE WHEN (properties ->> 'amount') ~ '^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$' THEN CAST((properties ->> 'amount') AS double precision) END) > 100) OR ("event" = 'login'))
    GROUP BY user_id
    HAVING (count(*) FILTER (WHERE "event" = 'fund_page_view' AND (properties ->> 'fund_type') = 'equity' AND (CASE WHEN (properties ->> 'amount') ~ '^\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*$' THEN CAST((properties ->> 'amount') AS double precision) END) > 100) >= 3) AND (count(*) FILTER (WHERE "event" = 'login' AND "timestamp" > TIMESTAMPTZ '2026-11-17 08:00:00+00:00' AND "timestamp" <= TIMESTAMPTZ '2026-11-24 08:00:00+00:00') >= 1)
  )
