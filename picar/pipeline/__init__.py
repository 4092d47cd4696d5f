"""Where a frame becomes a read: the loop (`loop`: newest frame -> detect -> OCR -> track -> match), the tracker,
the per-stage timings (`metrics`), the event payloads (`events`) and the car's store of reads, hits and audit
(`store`)."""
