"""The owner's controls: one core (commands + a status snapshot) and its front ends.

  core.py      ControlCore: skip, pause, resume, volume, hold, release, status; the
               one dispatcher every front end calls (requests are plain dicts)
  socket.py    the local Unix control socket (one JSON object per line) and its client
  web.py       the phone page and its JSON API (standard library http.server), off by default
  buttons.py   GPIO buttons through gpiozero, imported only when configured
  mqtt.py      Home Assistant over MQTT (paho-mqtt, imported only when configured);
               homeassistant.py holds its topics, discovery configs and payloads (pure)
  learning.py  SkipLearner (pure rule) and SkipStore (atomic file in the state directory)
  cli.py       `moodbox status/skip/pause/resume/volume/hold/release`
"""
