"""The watchlist: the index and matching (`index`), the update format (`update`), signatures (`signing`), the
car's store that applies updates (`sync`), import and export (`io`) and `picar watchlist` (`cli`)."""
