"""`picar hq ...`: the tools an HQ operator runs on any machine that reaches the broker."""

from __future__ import annotations


def hq_main(argv: list[str]) -> int:
    if argv and argv[0] == "monitor":
        from picar.hq.monitor import monitor_main

        return monitor_main(argv[1:])
    from picar.watchlist.cli import hq_main as watchlist_hq_main

    return watchlist_hq_main(argv)
