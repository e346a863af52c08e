"""storesense: in-store edge sensing and foot-traffic service."""

__version__ = "0.1.0"
