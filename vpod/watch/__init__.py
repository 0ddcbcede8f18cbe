"""Finding files: watchdog observers, the stabilizer, the catch-up scan."""
