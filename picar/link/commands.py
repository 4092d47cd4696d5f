"""Messages HQ sends to the car: today the watchlist, retained on the car's watchlist topic."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from picar.link.topics import WATCHLIST

if TYPE_CHECKING:
    from picar.watchlist.sync import WatchlistStore

log = logging.getLogger("picar")


class HqCommands:
    """`on_command(topic, body)` is called on the MQTT network thread: slow work gets its own thread.

    `on_new_list` runs after a watchlist update was accepted (status to HQ, recheck of past reads).
    """

    def __init__(self, watchlist: WatchlistStore, on_new_list: Callable[[], None]) -> None:
        self.watchlist = watchlist
        self.on_new_list = on_new_list

    def on_command(self, topic: str, body: bytes) -> None:
        if topic.endswith("/" + WATCHLIST):
            # A national list takes seconds to verify and index: not on the MQTT network thread.
            threading.Thread(target=self.apply_watchlist, args=(body, topic), name="watchlist", daemon=True).start()
        else:
            log.warning("HQ message on %s ignored: this car does not handle it", topic)

    def apply_watchlist(self, body: bytes, origin: str) -> bool:
        """Verify and apply one update; True when it was accepted."""
        result = self.watchlist.apply_update(body, origin=origin)  # one at a time: the store serialises them
        if not result.accepted:
            return False
        self.on_new_list()
        return True
