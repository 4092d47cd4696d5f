"""Where a frame and its position come in: cameras (`camera`), GPS receivers (`gps`, `nmea`), and the serial
line reader the station's sensors share (`serial_lines`)."""
