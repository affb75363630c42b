"""The frozen frame encoders, between the models and the preprocessing (paper §4.2.1).

Their architectures are :mod:`rjcma.models.backbones`; this layer gives them weights and runs them:

* :mod:`~rjcma.encoders.logmel`   VGGish's input stage (16 kHz, log-mel spectrogram, one 0.96 s patch per frame).
* :mod:`~rjcma.encoders.standins` the demo's stand-in weights (the pretrained checkpoints cannot ship).
* :mod:`~rjcma.encoders.build`    building an encoder from a config (released weights or stand-ins), per-process
  caching, precision, and the identity (file, SHA-256) of every encoder.
* :mod:`~rjcma.encoders.frozen`   the frozen encoders a checkpoint was trained with, checked against its store.
* :mod:`~rjcma.encoders.encode`   strided encoding: every ``frame_stride``-th row encoded, rows between interpolated;
  faces encoded as they are cut.

Preprocessing, end-to-end training and prediction all take their encoders from here. The layer reads the base
modules, the data layer (the demo renderer of the stand-in pretraining, the store's records) and the models.
"""
