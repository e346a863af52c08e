"""Brokers for tests: the product's own Mosquitto process helper (a real broker, never a mock)."""

from storesense.broker import Mosquitto, find_mosquitto, free_port

__all__ = ["Mosquitto", "find_mosquitto", "free_port"]
