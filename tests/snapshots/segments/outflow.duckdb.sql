SELECT c.cust_no
FROM customers AS c
WHERE c.cust_no IN (
      SELECT cust_no FROM transactions
      WHERE ts > TIMESTAMPTZ '2026-10-25 08:00:00+00:00' AND ts <= TIMESTAMPTZ '2026-11-24 08:00:00+00:00' AND direction = 'out' AND counterparty_type = 'other_bank'
      GROUP BY cust_no
      HAVING count(*) >= 1 AND sum(amount) >= 100000
    )
  OR c.cust_no IN (
      SELECT cust_no FROM customer_profile
      WHERE aum_trend_pct <= -30
    )
