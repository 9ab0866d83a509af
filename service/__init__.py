"""Herald: the event, notification and webhook-delivery hub."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("herald")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
