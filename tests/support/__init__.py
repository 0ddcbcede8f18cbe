"""Test helpers: media generated with ffmpeg at test time, a real daemon subprocess."""
