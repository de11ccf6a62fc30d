// veil review: a clip as people and as playback (filled in by the next commits).
