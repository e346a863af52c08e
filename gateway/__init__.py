"""The gateway: MQTT ingest into SQLite, store-local rollups, the scoped REST API, dashboards.

Modules: ``storage`` (the database and its one write path), ``validate`` (messages -> rows or
dead letters), ``rollups`` (store-local hour/day aggregation), ``queries`` (read side),
``api`` (FastAPI app factory), ``ingest`` (MQTT subscriber with acks after commit),
``service`` (`storesense gateway run`).
"""
