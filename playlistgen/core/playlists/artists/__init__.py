"""Artist similarity from the music: each artist's sound as a robust summary of its tracks'
catalog vectors (``profiles``), artists ranked by it (``similar``), and the ``artist_radio``
strategy over them (``radio``)."""
