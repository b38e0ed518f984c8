"""Audio: the mood's playlist, played with fades, inside the owner's volume limits.

`backend` is the sound-system interface (and its errors), `pygame_backend` the
production implementation; `playlists` reads folders, .m3u files and tracks into
playlists; `player` makes the decisions (which playlist, which track, fades, away,
quiet hours) with the time passed in; `thread` runs the player on its own thread,
reached through method calls queued to it.
"""
