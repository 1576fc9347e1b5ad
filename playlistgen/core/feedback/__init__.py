"""Listening feedback: skips and full plays (MPD radio, the /rest proxy's now-playing reports,
OpenSubsonic playbackReport), stored in ``listening_events`` and used by radio to avoid what the
listener skips."""
