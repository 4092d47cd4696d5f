"""Where a read goes: the car's link to HQ. The topic tree (`topics`), the on-disk outbox (`outbox`) and the
MQTT client that delivers from it (`mqtt`)."""

# Events in flight to the broker at once, at most: paho keeps each one in memory until its PUBACK. The config
# (`mqtt.max_inflight`) and the link both take the limit from here.
MAX_INFLIGHT = 1000
