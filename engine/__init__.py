"""liqpolicy: exchange liquidation rules as data, run by one exact-decimal engine."""

from engine._version import __version__

__all__ = ["__version__"]
