"""range-streams: random-access, seekable files over HTTP range requests."""
