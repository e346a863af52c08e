"""The edge node's runtime: configuration, camera workers, the outbox, MQTT transport, status,
clocks.
"""
