"""The paths a file takes through veil, one module each, all landing
through one envelope:

- `photo`: a photo decoded, searched, decided (faces and text), planned,
  drawn and written (`anonymize_image` does the same in memory);
- `clip`: a clip streamed once, frames detected, tracked, drawn and encoded;
- `parts`: a long clip cut at key frames, masked by workers side by side
  and joined without encoding again;
- `render`: an original drawn from a saved plan (`veil render`, Apply);
- `output`: the envelope: names checked free, the output and its plan
  written, verified, and any failure one report with nothing left behind.

`veil.Anonymizer` (`anonymizer`) holds the models and takes files down
these paths; many files at once go through `veil.batch`.
"""
