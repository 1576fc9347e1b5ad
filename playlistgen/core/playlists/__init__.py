"""Similarity search, playlist strategies, diversity rules and export formats.

Layout: ``catalog`` (the in-memory arrays and feature space), ``features`` (loading it from
SQLite), ``index`` (exact search, rebuild on library change), ``strategies``/``groups`` (pure
functions), ``diversity``, ``filters``, ``export`` (json/m3u8/xspf), ``tracks`` (track queries),
``service`` (what the API and the CLI call)."""
