"""Offline demo corpus in the Aff-Wild2 (6th ABAW, VA track) layout: ``rjcma synth``.

Nothing here is Aff-Wild2 data. The generator writes a small corpus with the organisers' folder layout
(the book's chapter *Data format*) so that the reader, the preprocessing, training and the book run on it unchanged:

```
<out>/6th ABAW Annotations/VA_Estimation_Challenge/Train_Set/<trial>.txt        header "valence,arousal"
<out>/6th ABAW Annotations/VA_Estimation_Challenge/Validation_Set/<trial>.txt   one row per frame, -5 = unannotated
<out>/names_of_videos_in_each_test_set/
      Valence_Arousal_Estimation_Challenge_test_set_release.txt                 test trial names, one per line
<out>/cropped_aligned/<trial>/00001.jpg ...                                     112x112 aligned faces, 1-based;
                                                                                no jpg where the face is turned away
                                                                                or occluded
<out>/videos/batch1/<video>.mp4                                                 H.264 + AAC 44.1 kHz mono,
                                                                                25 / 30 / 29.97 fps
<out>/subject_map.csv                                                           optional map trial,subject
<out>/SYNTH_TRUTH.json, <out>/SYNTH_TRUTH/<trial>.csv                           extra (not Aff-Wild2): generator
                                                                                parameters, latents, ceilings
```

Video ``1-…`` shows two subjects side by side: trials ``<video>_left`` and ``<video>_right`` have their own
annotation file and face folder and share the video's audio (they take turns speaking). The last video(s) form
the test set: video and faces, no annotations. Video names follow Aff-Wild2's ``<id>-<fps>-<W>x<H>`` style.

Signal design (paper §1: valence and arousal are expressed across modalities)
-----------------------------------------------------------------------------
Every trial (subject) has seven latent parts on the video's frame grid, each a smooth Gaussian process (an
Ornstein–Uhlenbeck process low-pass filtered once more; time constants 2.5–5 s) plus a per-trial offset (20 % of
its variance), except the word parts, which follow the adjectives said (below). The parts are made orthogonal
inside every trial and scaled to unit variance over the corpus (:func:`~rjcma.data.synth.design.normalise_parts`),
so the shares below hold on the generated corpus itself, in every fold (for arousal up to the chance correlation of
prosody and the spoken arousal words, which the speech fixes together). The two targets are sums of parts, each part
visible in one channel only, so the cues are complementary by construction: no modality holds more than 40 % of a
target's variance, all three together 80 %, and a correct fusion can reach what no single modality can::

    valence latent V(t) = m_V + s_V * ( sqrt(0.40) F(t) + sqrt(0.40) W(t)                     + sqrt(0.20) R_V(t) )
    arousal latent A(t) = m_A + s_A * ( sqrt(0.35) P(t) + sqrt(0.35) M(t) + sqrt(0.10) W_A(t) + sqrt(0.20) R_A(t) )

    modality   renders      share of valence   share of arousal     (design.CHANNELS; SYNTH_TRUTH.json holds both
    visual     F, M         0.40               0.35                  the designed shares and the R² measured on
    audio      P            0                  0.35                  the corpus: ``designed_explained_variance``,
    text       W, W_A       0.40               0.10                  ``explained_variance``)

- ``F`` face part of valence: mouth curvature (smile / frown) and brow angle of the rendered face (visual).
- ``W``, ``W_A`` word parts: what the subject says. The speaker picks English adjectives from a 5 x 3
  valence-arousal lexicon (``LEXICON``, "furious" … "blissful", like the valence/arousal norms of real words)
  whose cell is the nearest to a smooth *intended* pair (``words_intent``, ``words_a_intent`` in the truth files)
  at the time of the word. ``W`` (``W_A``) is then the valence (arousal) level of the last adjective this
  subject finished saying, held until the next one and followed with a 0.8 s one-pole lag (text; the audio
  carries the same words acoustically).
- ``P`` prosody part of arousal: espeak-ng pitch per utterance (18 pitch units per standard deviation) and
  loudness continuously (6 dB per standard deviation): audio only. The mouth opening follows the envelope of the
  speech *before* that loudness gain, and speaking rate and pauses are drawn per utterance (nuisances, not ``P``),
  so the face shows when someone speaks but not ``P``. (Up to version 6 rate, pauses and the mouth followed ``P``
  too, and the visual model read arousal from the mouth: the fusion had little left to add.)
- ``M`` motion part of arousal: eye opening, brow height, blink rate, head-roll oscillation and jitter amplitude
  (visual).
- ``R_V``, ``R_A`` residuals: not shown anywhere, so no model can predict them.

How the design came to be so (what earlier generator versions did and why they changed) is told in the book's data
chapter (*Demo corpus: version history*).

Annotation: the label of frame k is the latent at time ``t_k - lag`` (an annotator's reaction lag, 0.5–1.0 s
per trial) plus smooth annotation noise (std 0.04), clipped to [-1, 1] and written with three decimals. Runs of
``-5`` rows (unannotated) appear at the start of one trial and inside some others; frames with the face turned
away or occluded have no jpg (but keep their annotation, as in Aff-Wild2).

Designed ceilings (variance shares; CCC of the best predictor that sees the parts, 2 s / (1 + s + n) with the
noise share n): valence face 0.40 → 0.57, words 0.40 → 0.57, all 0.80 → 0.88; arousal prosody 0.35 → 0.51,
motion 0.35 → 0.51, words 0.10 → 0.18, all 0.80 → 0.88. So each target needs two or three modalities to approach
its ceiling, and each modality alone stays well below it. ``SYNTH_TRUTH.json`` also holds *measured* ceilings: the
CCC of the best linear predictor (least squares, one global delay) from the signals actually rendered (the
quantised words held until the next adjective, the per-utterance prosody including the partner's turns in the
two-subject video, the face and motion parts) against the written labels, per modality (visual = face + motion,
audio = prosody, text = words) and for all three: ``measured_ceiling_ccc`` fitted and scored on train +
validation, and ``measured_ceiling_ccc_validation`` fitted on train and scored on validation. The file holds the
figures of each generated corpus. Real models see these signals through encoders and ASR and reach less.

Completion: ``SYNTH_TRUTH.json`` is written last. A folder without it (an interrupted run) is cleared and
rewritten by the next ``rjcma synth``; a finished corpus with the same arguments is left as it is.

Determinism: the same seed gives byte-identical annotation files, jpgs, truth files and mp4 files on the same
FFmpeg/x264/espeak-ng build (x264 runs single-threaded with fixed settings). Frame widths are multiples of 128:
FFmpeg pads frame rows to 64 bytes, and with a chroma width that is not a multiple of 64 (e.g. 320 px → 160)
x264's output depended on the uninitialised padding, so the same frames gave different mp4 bytes.

Modules, one concern each: :mod:`~rjcma.data.synth.layout` (its own file names), :mod:`~rjcma.data.synth.design`
(shares, lexicon, latent parts), :mod:`~rjcma.data.synth.speech` (espeak-ng utterances),
:mod:`~rjcma.data.synth.plan` (partitions, identities, latents and speech of every video),
:mod:`~rjcma.data.synth.render` (faces and crops), :mod:`~rjcma.data.synth.mux` (frames and audio into the mp4),
:mod:`~rjcma.data.synth.truth` (labels and truth files), :mod:`~rjcma.data.synth.ceilings` and
:mod:`~rjcma.data.synth.corpus` (``rjcma synth``). The package holds one name, its entry point :func:`synthesize`
(what ``rjcma synth``, the book and the tests call); every other name is imported from its module.
"""

from rjcma.data.synth.corpus import synthesize

__all__ = ["synthesize"]
