"""Data files shipped with vpod (the ISO 639-2 table from Debian's iso-codes)."""
