"""Where a read goes: the car's link to HQ. The topic tree (`topics`), the on-disk outbox (`outbox`) and the
MQTT client that delivers from it (`mqtt`)."""
