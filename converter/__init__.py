"""moodbox.converter: the desktop side, never installed with its dependencies on the Pi.

Installed as `moodbox.converter` from the repository's converter/ folder. `data` reads
FER2013-style npz faces; `models` builds the CNNs; `train` trains them (resumable,
checkpoints every epoch) and averages checkpoints; `convert` makes the int8 TFLite
model the Pi runs and checks float/int8 agreement; `evaluate` measures it; `cli` is
`moodbox-convert`. `musicfit` and `loudness` fit and calibrate the catalog's mood
models offline (their fitted JSON ships in moodbox/catalog). TensorFlow is imported
only inside the functions that need it (the `converter` extra installs it).
"""
