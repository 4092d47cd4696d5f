"""Messages HQ sends to the car: today the watchlist, retained on the car's watchlist topic."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from picar.link.topics import WATCHLIST

if TYPE_CHECKING:
    from picar.watchlist.sync import WatchlistStore

log = logging.getLogger("picar")


class HqCommands:
    """`on_command(topic, body)` runs on the link's command worker (link/command_worker.py), which
    acknowledges the message to the broker only after it returns.

    `on_new_list` runs after a watchlist update was accepted (status to HQ, recheck of past reads).
    """

    def __init__(self, watchlist: WatchlistStore, on_new_list: Callable[[], None]) -> None:
        self.watchlist = watchlist
        self.on_new_list = on_new_list

    def on_command(self, topic: str, body: bytes) -> None:
        if topic.endswith("/" + WATCHLIST):
            self.apply_watchlist(body, topic)
        else:
            log.warning("HQ message on %s ignored: this car does not handle it", topic)

    def apply_watchlist(self, body: bytes, origin: str) -> bool:
        """Verify and apply one update; True when it was accepted."""
        result = self.watchlist.apply_update(body, origin=origin)  # one at a time: the store serialises them
        if not result.accepted:
            return False
        self.on_new_list()
        return True
