"""Finding faces: the models and how veil runs them.

One face for the rest of veil: `face_detector(options)` gives the search
that proposes candidates and chooses among them (`choose`), as a
`Detector`. Behind it: `models` (the bundled weights, sha256-checked),
`engine` (onnxruntime, telemetry off), `quantize` (int8 graphs), `detect`
(CenterFace on a ladder of scales), `retinaface` (the second, independent
detector), `second_look` (candidates cropped and searched again), `gpu`
(the same graphs on PyTorch) and `devices` (CPU or GPU).
"""
