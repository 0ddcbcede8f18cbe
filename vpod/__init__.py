"""vpod: the daemon of a video policy orchestrator.

It watches folders, waits until each new video file is completely written, and
normalizes its tracks (default flags, languages, order, container) by a policy, with
FFmpeg's ffprobe and MKVToolNix's mkvpropedit and mkvmerge.
"""

__version__ = "0.1.0"
