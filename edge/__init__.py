"""moodbox on the device: camera, faces, classifier, mood smoothing, player, daemon."""
