"""Vision: one greyscale frame in, the followed face and its emotion out.

`detector` is the face-detector interface (boxes, the configured plugin); `haar` is
one plugin per file; `selector` chooses the face to follow; `crop` frames it as
FER2013 was framed; `classifier` owns the one TFLite interpreter and `modelinfo` the
converter-to-device contract; `pipeline` wires them into FaceEmotionPipeline, the one
pipeline the daemon, `moodbox classify` and `moodbox bench` all run.
"""
