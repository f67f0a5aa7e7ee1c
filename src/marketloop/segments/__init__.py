"""Segments (客群): a definition language, compiled to warehouse SQL and evaluated in Python.

    syntax (ast, parse, text)  →  meaning (resolve → bound)  →  decisions (passes)  →  syntax (printers)
                                                     └──────────→  evaluate (one customer, per event)

- `ast`: frozen syntax nodes; `parse` reads the JSON form, `text` the text
  form, each with positions; `to_json` / `to_text` write them back.
- `catalog`: which fields, tags, holdings, transactions and events exist,
  their types and where they live — as data.
- `resolve`: binds names and types, reports every problem with its position.
- `passes`: fold relative dates against `as_of`, normalise, merge scans,
  push windows down.
- `printers`: DuckDB, ClickHouse and PostgreSQL membership and count SQL.
- `evaluate`: the same meaning for one customer's facts (real-time membership).
- `service`: `SegmentService`, what the API and CLI call.
- `membership`: real-time membership of many segments for one customer (entered / exited).
- `fixed`, `stages`, `drift`: fixed segments (固化客群), their members' stages per date, transition
  matrices and drift alerts.
- `sizes`: the count of every materialisation and drop / spike alerts.
- `lookalike`, `lookalike_model`, `features`: lookalike expansion (相似客群) into a static segment.

The engine imports core and ports only; adapters run its SQL.
"""
