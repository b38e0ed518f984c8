"""moodbox on the device: camera -> vision -> mood -> audio, run by the daemon.

Layout (this folder is installed as the `moodbox` package):
  vocabulary.py  emotions, "away", audio/playlist/image extensions, what is playable
  config/        schema (frozen dataclasses, one per section) apart from the loader
  camera/        the frame-source interface, one backend per file, the grabber thread
  vision/        detector interface and plugins, selector, crop, classifier, pipeline
  mood.py        EmotionSmoother: per-frame probabilities -> a calm, stable mood
  audio/         backend interface apart from pygame, playlists, player, player thread
  daemon.py      wires the stages, signals, status line, systemd notify (notify.py)
  commands/      the `moodbox` command line: run, check, classify, bench, catalog
  catalog/       `moodbox catalog`: sorts a music library into mood playlists
  assets.py      where the shipped model, playlists and default config live
The desktop converter (training, conversion, evaluation, offline model fitting) is
`moodbox.converter`, from the repository's converter/ folder; TensorFlow stays there.
"""
