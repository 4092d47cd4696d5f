"""The in-car station: the officer's alert page, served by `StationServer`."""

from picar.ui.server import StationServer

__all__ = ["StationServer"]
