"""MQTT topic layout, one prefix for the whole chain.

    {prefix}/{store}/{camera}/agg      window aggregates, QoS 1, not retained
    {prefix}/{store}/{device}/status   device status, retained, last will "offline"
    {prefix}/{store}/{camera}/config   remote camera config from HQ, retained
    {prefix}/{store}/{camera}/ack      gateway -> edge: window ids committed (storesense.acks)
    {prefix}/{store}/{camera}/reported edge -> HQ: config saved on the installer page, retained
    {prefix}/{store}/{device}/model    HQ -> edge: the detector to run (ModelUpdateMessage)

The store id is the second level so a broker ACL can confine a device to its own store
(``pattern`` rules or one rule per device user, see deploy/mosquitto).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "storesense/v1"
KINDS = ("agg", "status", "config", "ack", "reported", "model")


@dataclass(frozen=True)
class Topics:
    prefix: str = DEFAULT_PREFIX

    def aggregate(self, store_id: str, camera_id: str) -> str:
        return f"{self.prefix}/{store_id}/{camera_id}/agg"

    def status(self, store_id: str, device_id: str) -> str:
        return f"{self.prefix}/{store_id}/{device_id}/status"

    def config(self, store_id: str, camera_id: str) -> str:
        return f"{self.prefix}/{store_id}/{camera_id}/config"

    def ack(self, store_id: str, camera_id: str) -> str:
        return f"{self.prefix}/{store_id}/{camera_id}/ack"

    def reported(self, store_id: str, camera_id: str) -> str:
        return f"{self.prefix}/{store_id}/{camera_id}/reported"

    def model(self, store_id: str, device_id: str) -> str:
        return f"{self.prefix}/{store_id}/{device_id}/model"

    def all_aggregates(self) -> str:
        return f"{self.prefix}/+/+/agg"

    def all_status(self) -> str:
        return f"{self.prefix}/+/+/status"

    def shared(self, group: str, topic: str) -> str:
        """MQTT 5 shared subscription: the broker splits messages among the group."""
        return f"$share/{group}/{topic}"

    def parse(self, topic: str) -> tuple[str, str, str] | None:
        """(store, camera_or_device, kind) for a topic under the prefix, else None."""
        head = self.prefix + "/"
        if not topic.startswith(head):
            return None
        parts = topic[len(head):].split("/")
        if len(parts) != 3 or parts[2] not in KINDS:
            return None
        return parts[0], parts[1], parts[2]
