"""Face detection and alignment on the demo corpus: detection rate per subject, frames per second, crop agreement.

    python benchmarks/faces.py [--videos 12] [--seconds 6] [--every 2] [--threads 2] [--fit-template]

Two demo corpora are generated in a temporary folder: the book's seed (7), on which ``--fit-template`` fits the
alignment template and the Haar box layout (the constants in ``rjcma.preprocess.faces.align``), and another seed (11),
on which everything is measured, so the agreement figures are out of sample. Per subject: the share of frames
with a visible face (a ``cropped_aligned`` jpg) in which the detector finds a face at that subject's place, and
the false detections in frames without a visible face. Crop agreement: every detected face is aligned to 48 x 48
and compared with the corpus's own jpg of that frame resized to 48 x 48 (mean absolute pixel difference, 0-255,
and pixel correlation), for MTCNN with the fitted template, MTCNN with the ArcFace layout, Haar with the fitted
box layout and a square crop of the Haar box (``rjcma.preprocess.faces.align.crop_square``). Frames per second: one thread pool of
``--threads`` cores, the demo's 384 x 288 frames and the same frames scaled to 1280 x 720.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def read_frames(path: Path) -> list[np.ndarray]:
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def read_jpg48(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB").resize((48, 48)), dtype=np.uint8)


def skin_luma(faces_dir: Path) -> float:
    """Rec. 601 luma of the cheeks (two 6 x 6 patches of the 112 x 112 crop), median over the trial's jpgs."""
    from PIL import Image

    vals = []
    for p in sorted(faces_dir.glob("*.jpg"))[::10]:
        a = np.asarray(Image.open(p).convert("RGB"), dtype=np.float64)
        patch = np.concatenate([a[60:66, 30:36].reshape(-1, 3), a[60:66, 76:82].reshape(-1, 3)])
        vals.append(float((patch @ np.array([0.299, 0.587, 0.114])).mean()))
    return float(np.median(vals))


def trials_of(root: Path) -> list[dict]:
    truth = json.loads((root / "SYNTH_TRUTH.json").read_text())
    out = []
    for v in truth["videos"]:
        for tr in v["trials"]:
            out.append({"video": v["video"], "width": v["width"], "height": v["height"], "n": v["n_frames"],
                        "trial": tr["name"], "side": tr["side"], "subject": tr["subject"]})
    return out


def pick(faces, tr) -> object | None:
    """The detection at this trial's place: its half of the frame for the two-person video, else the largest."""
    W = tr["width"]
    if tr["side"] == "left":
        faces = [f for f in faces if f.centre[0] < W / 2]
    elif tr["side"] == "right":
        faces = [f for f in faces if f.centre[0] >= W / 2]
    return max(faces, key=lambda f: f.size) if faces else None


def detect_all(root: Path, every: int, detectors: dict) -> dict:
    """{video: {"frames": [k...], det_name: [faces per frame]}} for every ``every``-th frame."""
    out = {}
    vids = sorted({t["video"] for t in trials_of(root)}, key=lambda s: int(s.split("-")[0]))
    for v in vids:
        frames = read_frames(root / "videos" / "batch1" / f"{v}.mp4")
        ks = list(range(0, len(frames), every))
        sel = [frames[k] for k in ks]
        out[v] = {"frames": ks, "images": sel}
        for name, det in detectors.items():
            out[v][name] = det.detect_batch(sel)
        print(f"  {v}: {len(ks)} frames", flush=True)
    return out


def fit(root: Path, every: int) -> None:
    """Fit TEMPLATE (median MTCNN landmarks in the corpus's 112 x 112 crops) and HAAR_BOX_LANDMARKS."""
    from PIL import Image

    from rjcma.preprocess.faces.align import fit_template
    from rjcma.preprocess.faces.boxes import iou
    from rjcma.preprocess.faces.detect import HaarDetector
    from rjcma.preprocess.faces.mtcnn import MTCNNDetector

    def crops():
        for p in sorted((root / "cropped_aligned").glob("*/*.jpg")):
            yield np.asarray(Image.open(p).convert("RGB"))

    n_jpg = len(list((root / "cropped_aligned").glob("*/*.jpg")))
    tpl, n = fit_template(crops())
    print(f"TEMPLATE: median of MTCNN's landmarks in {n} of {n_jpg} cropped_aligned jpgs")
    print(np.array2string(np.round(tpl, 2), separator=", "))
    det = {"mtcnn": MTCNNDetector(), "haar": HaarDetector()}
    res = detect_all(root, every, det)
    rel = []
    for v, r in res.items():
        for fm, fh in zip(r["mtcnn"], r["haar"]):
            for h in fh:
                m = max(fm, key=lambda f: iou(f.box, h.box), default=None)
                if m is None or iou(m.box, h.box) < 0.3:
                    continue
                x0, y0, x1, y1 = h.box
                rel.append((m.landmarks - [x0, y0]) / [x1 - x0, y1 - y0])
    print(f"HAAR_BOX_LANDMARKS: median over {len(rel)} faces found by both detectors")
    print(np.array2string(np.round(np.median(np.stack(rel), 0), 4), separator=", "))


def measure(root: Path, every: int) -> dict:
    from rjcma.preprocess.faces import align as A
    from rjcma.preprocess.faces.detect import HaarDetector
    from rjcma.preprocess.faces.mtcnn import MTCNNDetector

    dets = {"mtcnn": MTCNNDetector(), "haar": HaarDetector()}
    res = detect_all(root, every, dets)
    for r in res.values():  # detector="auto": MTCNN, Haar where MTCNN found nothing (MTCNNThenHaar)
        r["auto"] = [m if m else h for m, h in zip(r["mtcnn"], r["haar"])]
    names = ("mtcnn", "haar", "auto")
    rows, agree = [], {k: [] for k in ("mtcnn_template", "mtcnn_arcface", "haar_template", "haar_square",
                                       "auto_template")}
    for tr in trials_of(root):
        r = res[tr["video"]]
        fdir = root / "cropped_aligned" / tr["trial"]
        row = {"trial": tr["trial"], "subject": tr["subject"], "skin_luma": round(skin_luma(fdir), 1)}
        for name in names:
            hit = vis = fp = novis = 0
            for k, img, faces in zip(r["frames"], r["images"], r[name]):
                jpg = fdir / f"{k + 1:05d}.jpg"
                f = pick(faces, tr)
                if jpg.exists():
                    vis += 1
                    if f is not None:
                        hit += 1
                        ref = read_jpg48(jpg)
                        crops = {}
                        if name == "auto":
                            crops["auto_template"] = A.align_face(img, f)
                        elif name == "mtcnn":
                            crops["mtcnn_template"] = A.align_face(img, f)
                            crops["mtcnn_arcface"] = A.align_face(img, f, template=A.ARCFACE_TEMPLATE)
                        else:
                            crops["haar_template"] = A.align_face(img, f)
                            crops["haar_square"] = A.crop_square(img, A.square_box(f.box))
                        for key, c in crops.items():
                            a, b = c.astype(np.float64).ravel(), ref.astype(np.float64).ravel()
                            agree[key].append((np.abs(a - b).mean(), np.corrcoef(a, b)[0, 1]))
                else:
                    novis += 1
                    fp += f is not None
            row[f"{name}_rate"] = hit / max(vis, 1)
            row[f"{name}_false"] = f"{fp}/{novis}"
        row["frames"] = vis
        rows.append(row)
    summary = {k: {"n": len(v), "mad": float(np.mean([x[0] for x in v])), "corr": float(np.mean([x[1] for x in v]))}
               for k, v in agree.items() if v}
    return {"rows": rows, "agreement": summary}


def speed(root: Path, threads: int) -> list[dict]:
    import cv2
    import torch

    from rjcma.preprocess.faces.detect import HaarDetector, MTCNNThenHaar
    from rjcma.preprocess.faces.mtcnn import MTCNNDetector

    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)
    v = sorted((root / "videos" / "batch1").glob("*.mp4"))[1]
    frames = read_frames(v)[:64]
    hd = [cv2.resize(f, (1280, 720), interpolation=cv2.INTER_LINEAR) for f in frames[:32]]
    out = []
    for label, fr in ((f"{frames[0].shape[1]}x{frames[0].shape[0]}", frames), ("1280x720", hd)):
        m, h = MTCNNDetector(), HaarDetector()
        for name, det in (("mtcnn", m), ("haar", h), ("auto", MTCNNThenHaar(m, h))):
            det.detect_batch(fr[:4])  # warm-up
            t = time.perf_counter()
            det.detect_batch(fr)
            dt = time.perf_counter() - t
            out.append({"frames": label, "detector": name, "fps": len(fr) / dt})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=12)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--every", type=int, default=2, help="measure every n-th frame")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fit-template", action="store_true", help="print the fitted constants (seed 7) and stop")
    ap.add_argument("--work", default=None, help="folder for the generated corpora (default: a temporary one)")
    ap.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = ap.parse_args()

    import torch

    from rjcma.data.synth import synthesize

    torch.set_num_threads(args.threads)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="rjcma-faces-"))
    if args.fit_template:
        root = Path(synthesize(work / "seed7", videos=args.videos, seconds=args.seconds, seed=7, progress=False))
        fit(root, args.every)
        return
    root = Path(synthesize(work / "seed11", videos=args.videos, seconds=args.seconds, seed=11, progress=False))
    load = os.getloadavg()[0]
    m = measure(root, args.every)
    sp = speed(root, args.threads)
    if args.json:
        Path(args.json).write_text(json.dumps({"detection": m["rows"], "agreement": m["agreement"], "speed": sp,
                                               "load_average": load}, indent=1))
    print(f"\nDetection rate per subject (demo corpus seed 11, {args.videos} videos x {args.seconds:g} s, "
          f"every {args.every}. frame)\n")
    print("| trial | subject | skin luma | frames with a face | MTCNN | Haar | auto | false: MTCNN / Haar / auto |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in sorted(m["rows"], key=lambda r: r["skin_luma"]):
        print(f"| {r['trial']} | {r['subject']} | {r['skin_luma']:.0f} | {r['frames']} | {r['mtcnn_rate']:.1%} | "
              f"{r['haar_rate']:.1%} | {r['auto_rate']:.1%} | {r['mtcnn_false']} / {r['haar_false']} / "
              f"{r['auto_false']} |")
    names = ("mtcnn", "haar", "auto")
    tot = {n: sum(r[f"{n}_rate"] * r["frames"] for r in m["rows"]) / sum(r["frames"] for r in m["rows"])
           for n in names}
    print(f"| all | | | {sum(r['frames'] for r in m['rows'])} | {tot['mtcnn']:.1%} | {tot['haar']:.1%} | "
          f"{tot['auto']:.1%} | |")
    print("\nAgreement of the 48 x 48 crops with the corpus's own cropped_aligned jpgs\n")
    print("| crop | faces | mean abs difference (0-255) | pixel correlation |")
    print("| --- | ---: | ---: | ---: |")
    for k, v in m["agreement"].items():
        print(f"| {k} | {v['n']} | {v['mad']:.1f} | {v['corr']:.3f} |")
    print(f"\nFrames per second ({args.threads} threads; load average at start {load:.1f})\n")
    print("| frames | detector | frames/s |")
    print("| --- | --- | ---: |")
    for r in sp:
        print(f"| {r['frames']} | {r['detector']} | {r['fps']:.1f} |")


if __name__ == "__main__":
    main()
