"""HQ's ingest: the fleet's messages from the broker into HQ's database (`worker.py`), run by `picar hq ingest`
(`cli.py`); as many workers as the load needs share the messages (docs/hq.md)."""
