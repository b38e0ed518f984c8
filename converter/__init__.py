"""moodbox desktop tools: train the emotion CNN, convert it to int8 TFLite, evaluate it."""
