"""The project's small exception tree. Messages name the field or file and what was expected."""


class StoresenseError(Exception):
    """Base of every error the product raises on purpose."""


class ConfigError(StoresenseError):
    """A configuration file or message is invalid; the message names the field and value."""


class ModelError(StoresenseError):
    """A model file is missing, mismatched (sha256) or unreadable."""


class SourceError(StoresenseError):
    """A frame source (file, RTSP, USB) cannot be opened or has ended."""
