"""Tags (标签) and stratification (客户分层): facts about customers, defined once, kept with their history.

- `definitions`: kinds (static, rule, real-time, model), rule documents in
  the segment language (`when`, or ordered `cases` and `else`), lineage.
- `compile`: a rule tag as one set-based warehouse query, through the
  segment engine's passes and printer.
- `refresh`: incremental refresh in dependency order, statistics per run.
- `starter` + `library/*.toml`: the starter library, RFM / AIPL / lifecycle included.
- `imports`: uploaded customer lists; `service`: `TagService`, what the API and CLI call.

The engine imports segments, ports and core; adapters store definitions and values.
"""
