"""The paho client as the edge configures it: protocol, credentials, TLS, last will, connect.

Bad credentials or TLS files raise ConfigError here, at construction, so a node fails
before it loads models rather than reconnecting for ever.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.node.config import BrokerConfig, TlsConfig, read_password
from storesense.errors import ConfigError


@dataclass(frozen=True)
class Will:
    topic: str
    payload: bytes


def make_client(broker: BrokerConfig, client_id: str, will: Will | None) -> mqtt.Client:
    """A paho client, not yet connected and without callbacks."""
    # MQTT 5: clean_start=True in connect_async() and no session expiry property (0), a
    # fresh session every connection, ended at disconnect, as clean_session=True is with
    # 3.1.1 (kept for brokers without 5). What was in flight at a disconnect is resent
    # by paho and, after a restart, by the outbox.
    if broker.protocol == "5":
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv5)
    else:
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                        protocol=mqtt.MQTTv311, clean_session=True)
    if broker.username:
        c.username_pw_set(broker.username, read_password(broker))
    if broker.tls:
        _set_tls(c, broker.tls)
    if will:
        c.will_set(will.topic, will.payload, qos=1, retain=True)
    c.reconnect_delay_set(int(max(1, broker.reconnect_min_s)), int(broker.reconnect_max_s))
    # We bound in-flight messages ourselves (OutboxPublisher); paho must not queue them.
    c.max_inflight_messages_set(0)
    return c


def _set_tls(c: mqtt.Client, tls: TlsConfig) -> None:
    for field, path in (("ca_file", tls.ca_file), ("cert_file", tls.cert_file),
                        ("key_file", tls.key_file)):
        if path is not None and not path.is_file():
            raise ConfigError(f"broker.tls.{field}: {path} is not a readable file")
    try:
        c.tls_set(
            ca_certs=str(tls.ca_file),
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
    except (OSError, ValueError) as e:  # not PEM, key does not match the cert
        raise ConfigError(f"broker.tls: cannot load the CA, cert or key: {e}") from e
    c.tls_insecure_set(tls.insecure)


def connect_async(c: mqtt.Client, broker: BrokerConfig) -> None:
    """Connect in the background; paho's loop thread retries until the broker answers."""
    if broker.protocol == "5":
        c.connect_async(broker.host, broker.port, broker.keepalive_s, clean_start=True)
    else:  # paho refuses clean_start for 3.1.1; clean_session was set on the client
        c.connect_async(broker.host, broker.port, broker.keepalive_s)
