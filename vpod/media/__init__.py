"""Reading and rewriting media files with FFmpeg and MKVToolNix."""
