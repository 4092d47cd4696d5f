"""What runs at HQ and never in the car: `picar hq` (keys, signed watchlist updates) and the fleet monitor."""
