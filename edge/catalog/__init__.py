"""The music catalog: scan a library, import Spotify features, write mood playlists."""
