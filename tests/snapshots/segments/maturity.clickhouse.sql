SELECT c.cust_no
FROM customers AS c
WHERE c.cust_no IN (
      SELECT h.cust_no FROM holdings AS h JOIN products AS p ON p.product_code = h.product_code
      WHERE h.valid_from <= toDate32('2026-11-24') AND (h.valid_to IS NULL OR h.valid_to >= toDate32('2026-11-24')) AND h.balance > 0 AND p.product_type = 'wealth' AND h.maturity_date BETWEEN toDate32('2026-11-24') AND toDate32('2026-12-01')
      GROUP BY h.cust_no
      HAVING sum(h.balance) >= 50000
    )
  AND (c.vip_level IN ('gold', 'diamond')
    OR c.cust_no IN (
        SELECT cust_no FROM customer_tags
        WHERE "tag" = 'rfm' AND "value" IN ('champion', 'loyal')
      ))
