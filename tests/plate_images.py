"""A hit's evidence drawn for tests: a plate crop (240x64) and a context frame (640x360) with the crop on a car."""

from __future__ import annotations

import cv2
import numpy as np


def draw_evidence(plate: str, font_scale: float = 1.5) -> tuple[np.ndarray, np.ndarray]:
    crop = np.full((64, 240, 3), 236, np.uint8)
    cv2.rectangle(crop, (2, 2), (237, 61), (20, 20, 20), 2)
    cv2.putText(crop, plate, (12, 48), cv2.FONT_HERSHEY_SIMPLEX, font_scale, (10, 10, 10), 4)
    frame = np.full((360, 640, 3), (70, 80, 85), np.uint8)
    cv2.rectangle(frame, (0, 250), (640, 360), (50, 50, 50), -1)
    cv2.rectangle(frame, (190, 140), (450, 300), (150, 60, 30), -1)
    frame[250:282, 260:380] = cv2.resize(crop, (120, 32))
    return crop, frame
