"""The track policy: what a conforming file looks like, and how to get there."""
