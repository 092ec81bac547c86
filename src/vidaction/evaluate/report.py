"""report.html: one self-contained page (pictures and GIFs inlined as base64), so it can
be mailed or archived without the files around it."""

from __future__ import annotations

import base64
import html
import io
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from vidaction.evaluate.metrics import chance, model_title, most_confused, shows_top_k

GIF_FRAMES = 16
GIF_SIDE = 128


def small_gif(path: str | Path, frames: int = GIF_FRAMES, side: int = GIF_SIDE) -> bytes:
    """Evenly spaced frames of the whole video, longest side `side` px, as GIF bytes."""
    from PIL import Image

    from vidaction.io import VideoReader

    with VideoReader(path, threads=1) as r:
        n = r.frame_count
        idx = sorted({int(round(x)) for x in np.linspace(0, n - 1, min(frames, n))})
        scale = min(1.0, side / max(r.info.width, r.info.height))
        size = (max(1, round(r.info.width * scale)), max(1, round(r.info.height * scale)))
        arr = r.read(idx, decode_size=size)
        fps = r.info.fps or 25.0
    # play the sampled frames over the clip's real duration, within 4..12 frames a second
    rate = min(12.0, max(4.0, len(idx) * fps / max(n, 1)))
    images = [Image.fromarray(a) for a in arr]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(round(1000 / rate)), loop=0, disposal=1)
    return buf.getvalue()


def misclassified_gifs(predictions: list[dict], classes: list[str], n: int) -> list[dict]:
    """The `n` most confident mistakes, each with its top-3 and a small GIF (or why not)."""
    wrong = [p for p in predictions if int(np.argmax(p["probs"])) != p["true"]]
    wrong.sort(key=lambda p: (-float(np.max(p["probs"])), p["path"]))
    out = []
    for p in wrong[:n]:
        order = np.argsort(-p["probs"], kind="stable")[:3]
        item = {"path": p["path"], "true": classes[p["true"]],
                "top3": [(classes[j], float(p["probs"][j])) for j in order],
                "gif": None, "error": ""}
        try:
            item["gif"] = small_gif(p["path"])
        except Exception as e:  # noqa: BLE001 - a missing picture must not lose the report
            item["error"] = str(e)
        out.append(item)
    return out


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1200px;padding:0 16px;color:#1d1d1f}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid
#ddd;padding-bottom:4px}.sub{color:#666;margin:0 0 16px}
table{border-collapse:collapse;margin:6px 0}td,th{padding:3px 10px;border-bottom:1px solid
#eee;text-align:left}th{background:#f6f6f8}td.n{text-align:right;font-variant-numeric:
tabular-nums}.kpi{display:flex;flex-wrap:wrap;gap:10px;margin:10px 0}.kpi div{border:1px solid
#ddd;border-radius:6px;padding:8px 14px;min-width:120px}.kpi b{display:block;font-size:22px}
.kpi span{color:#666;font-size:12px}img.fig{max-width:100%;border:1px solid #eee}
.scroll{overflow:auto;max-height:95vh}#zoom:checked~.scroll img{max-width:none}
label[for=zoom]{font-size:12px;color:#0b5cad;cursor:pointer}
.gifs{display:flex;flex-wrap:wrap;gap:14px}.gifs figure{margin:0;border:1px solid #ddd;
border-radius:6px;padding:8px;width:220px}.gifs img{width:100%;image-rendering:pixelated}
.gifs figcaption{font-size:12px;word-break:break-all}.ok{color:#1a7f37}.bad{color:#c62828}
.warn{background:#fff4e5;border:1px solid #f0c36d;padding:6px 10px;border-radius:4px}
pre{background:#f6f6f8;padding:10px;overflow:auto;font-size:12px}
.bar{display:inline-block;height:9px;background:#4a86c5;vertical-align:middle;margin-right:6px}
details summary{cursor:pointer;color:#0b5cad}
"""


def _e(x) -> str:
    return html.escape(str(x))


def _img(png: bytes, alt: str, mime: str = "image/png", cls: str = "fig") -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img class="{cls}" alt="{_e(alt)}" src="data:{mime};base64,{data}">'


def _table(header: list[str] | None, rows: list[list], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "<tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join(
        "<tr>" + "".join(f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>"
                         for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table>{head}{body}</table>"


def _pct(p: float) -> str:
    """A probability or an accuracy, printed one way everywhere: "99.4%"."""
    return f"{float(p) * 100:.1f}%"


def render_report(metrics: dict, config: dict, dataset, videos: list, confusion: bytes,
                  curves: bytes | None, gifs: list[dict],
                  gallery: list[dict] | None = None) -> str:
    """`gallery`: labelled prediction GIFs to show (the demo's), each {"path": the GIF,
    "video", "true", "predicted", "prob"}; embedded, so the page stays one file."""
    m = metrics
    classes = m["classes"]
    k = m["top_k"]
    title = model_title(m)
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f"<title>vidaction evaluation: {_e(title)}</title>"
             f"<style>{_CSS}</style></head><body>"]
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts.append(f"<h1>{_e(title[:1].upper() + title[1:])}</h1>"
                 f"<p class=sub>run {_e(m['run'])} &middot; data {_e(m['data'])} &middot; "
                 f"{m['videos']} videos scored, {m['skipped']} skipped &middot; "
                 f"{m['clips_per_video']} clip(s) per video, {_e(m['averaging'])} &middot; "
                 f"{when}</p>")
    if m["seen_split"]:
        parts.append(f"<p class=warn>The run saw the {_e(m['split'])} split during training: "
                     "these numbers overstate how it does on new videos.</p>")
    for w in m.get("warnings", []):
        parts.append(f"<p class=warn>{_e(w)}</p>")

    kpis = [("top-1 accuracy", _pct(m["top1_accuracy"]),
             f"per video; chance {_pct(chance(m))}"),
            *([(f"top-{k} accuracy", _pct(m["top5_accuracy"]), "per video")]
              if shows_top_k(m) else []),
            ("clip top-1", _pct(m["clip_top1_accuracy"]), "one clip alone"),
            ("mean class accuracy", _pct(m["mean_class_accuracy"]), "mean of per-class recall"),
            ("macro F1", f"{m['macro_f1']:.3f}", "classes weighted alike"),
            ("loss", f"{m['loss']:.3f}", "of the averaged prediction")]
    parts.append("<h2>Metrics</h2><div class=kpi>" + "".join(
        f"<div><b>{v}</b>{_e(name)}<br><span>{_e(note)}</span></div>"
        for name, v, note in kpis) + "</div>")
    parts.append(_table(["average", "precision", "recall", "F1"], [
        [mode, *(f"{m[f'{mode}_{x}']:.3f}" for x in ("precision", "recall", "f1"))]
        for mode in ("macro", "weighted")], numeric={1, 2, 3}))

    parts.append("<h2>Confusion matrix</h2><p class=sub>Rows: true class; columns: predicted. "
                 "Left: counts; right: each row divided by its class's videos.</p>")
    # fitted to the page; the box switches to full size (scrolling) for many classes
    parts.append('<input type=checkbox id=zoom><label for=zoom> full size</label>'
                 '<div class=scroll>' + _img(confusion, "confusion matrix") + "</div>")

    pairs = most_confused(m["confusion_matrix"], classes, 10)
    parts.append("<h2>Most confused pairs</h2>")
    if pairs:
        parts.append(_table(["true class", "predicted as", "videos", "share of the class"], [
            [_e(p["true"]), _e(p["predicted"]), p["count"], f"{p['share']:.1%}"]
            for p in pairs], numeric={2, 3}))
    else:
        parts.append("<p>No video was misclassified.</p>")

    parts.append("<h2>Misclassified videos</h2>")
    if gifs:
        parts.append("<p class=sub>The most confident mistakes, with the model's top 3.</p>"
                     "<div class=gifs>")
        for g in gifs:
            pic = _img(g["gif"], Path(g["path"]).name, "image/gif", "") if g["gif"] else (
                f"<p class=bad>no picture: {_e(g['error'])}</p>")
            top = "<br>".join(
                f"<span class={'ok' if c == g['true'] else 'bad'}>{_e(c)} {_pct(p)}</span>"
                for c, p in g["top3"])
            parts.append(f"<figure>{pic}<figcaption><b>true: {_e(g['true'])}</b><br>{top}"
                         f"<br><span class=sub>{_e(Path(g['path']).name)}</span>"
                         "</figcaption></figure>")
        parts.append("</div>")
    else:
        parts.append("<p>None.</p>")

    if gallery:
        parts.append(_gallery_section(gallery))

    parts.append("<h2>Per class</h2>")
    per = m["per_class"]
    parts.append(_table(["class", "precision", "recall", "F1", "videos", "predicted"], [
        [_e(c), f"{per[c]['precision']:.3f}", f"{per[c]['recall']:.3f}",
         f'<span class=bar style="width:{per[c]["f1"] * 60:.0f}px"></span>{per[c]["f1"]:.3f}',
         per[c]["support"], per[c]["predicted"]] for c in classes], numeric={1, 2, 3, 4, 5}))

    parts.append("<h2>Training curves</h2>")
    parts.append(_img(curves, "training curves") if curves else
                 "<p>No history.json in the run.</p>")

    parts.append("<h2>Skipped videos</h2>")
    if m["skipped_videos"]:
        parts.append(_table(["file", "reason"], [[_e(s["path"]), _e(s["reason"])]
                                                  for s in m["skipped_videos"]]))
    else:
        parts.append("<p>None: every video of the split was read.</p>")

    parts.append(_dataset_section(m, config, dataset, videos))
    parts.append(_config_section(config))
    parts.append("</body></html>\n")
    return "".join(parts)


def _dataset_section(m: dict, config: dict, dataset, videos: list) -> str:
    dc = config.get("dataset", {})
    per_class = Counter(v.class_name for v in videos)
    counts = Counter(c.split for c in dataset.clips)
    rows = [["folder", _e(dataset.root)], ["layout", _e(dataset.layout)],
            ["classes", len(dataset.classes)],
            ["videos per split", _e(", ".join(f"{s} {counts[s]}" for s in dataset.splits))],
            ["the run trained on", _e(f"{dc.get('train', '?')} videos, validated on "
                                      f"{dc.get('val', '?')} (from {dc.get('root', '?')})")]]
    rows += [["note", _e(n)] for n in [*dataset.notes, *dc.get("notes", [])]]
    out = "<h2>Dataset</h2>" + _table(None, rows)
    out += (f"<details><summary>{_e(m['split'])} videos per class</summary>"
            + _table(["class", "videos"], [[_e(c), per_class.get(c, 0)]
                                            for c in dataset.classes], numeric={1})
            + "</details>")
    return out


def _gallery_section(gallery: list[dict]) -> str:
    out = ["<h2>Predicted videos</h2><p class=sub>Test videos with the label the model gave "
           "drawn on them, against the true one.</p><div class=gifs>"]
    for g in gallery:
        right = g["predicted"] == g["true"]
        try:
            pic = _img(Path(g["path"]).read_bytes(), Path(g["video"]).name, "image/gif", "")
        except OSError as e:
            pic = f"<p class=bad>no picture: {_e(e)}</p>"
        out.append(f"<figure>{pic}<figcaption><b>true: {_e(g['true'])}</b><br>"
                   f"<span class={'ok' if right else 'bad'}>predicted {_e(g['predicted'])} "
                   f"{_pct(g['prob'])}: {'right' if right else 'wrong'}</span><br>"
                   f"<span class=sub>{_e(Path(g['video']).name)}</span></figcaption></figure>")
    return "".join(out) + "</div>"


# models with a pretrained backbone that can stay frozen or be fine-tuned
_BACKBONE_MODELS = ("movinet-", "cnn-rnn", "frame-baseline")


def _config_rows(config: dict) -> list[list[str]]:
    """The settings that apply to this model, in words (no Python True/None)."""
    mod, tc, sm = config.get("model", {}), config.get("train", {}), config.get("sampling", {})
    name = str(mod.get("name"))
    pretrained = mod.get("pretrained")
    weights = "none, trained from scratch" if pretrained in (None, "none") else str(pretrained)
    rows = [["model", name], ["pretrained weights", weights]]
    if tc.get("frame_backbone") and name in ("cnn-rnn", "frame-baseline"):
        rows.append(["per-frame CNN", str(tc["frame_backbone"])])
    n, step, size = sm.get("n_frames"), sm.get("frame_step"), sm.get("size")
    clip = f"{n} frames, {step} apart" if not sm.get("fps") else \
        f"{n} frames at {sm['fps']:g} a second"
    fit = "letterboxed" if sm.get("resize", "letterbox") == "letterbox" else "centre-cropped"
    rows.append(["clip", f"{clip}, {size}x{size} pixels, {fit}"])
    short = sm.get("short", "pad")
    rows.append(["videos shorter than a clip", {"pad": "padded with black frames",
                                                "loop": "looped from the start",
                                                "stretch": "stretched over the video"}
                 .get(short, str(short))])
    if tc:
        rows.append(["training", f"up to {tc.get('epochs')} epochs, batch {tc.get('batch_size')}"
                     + (f", learning rate {tc['lr']:g}" if tc.get("lr")
                        else ", the model's default learning rate")
                     + (", augmented clips" if tc.get("augment") else ", no augmentation")
                     + f", seed {tc.get('seed', 0)}"])
        if name.startswith(_BACKBONE_MODELS) and pretrained not in (None, "none"):
            if not tc.get("freeze_backbone", True):
                tuned = "whole backbone trained"
            elif tc.get("unfreeze_top"):
                tuned = f"last {tc['unfreeze_top']} backbone blocks fine-tuned, the rest frozen"
            else:
                tuned = "backbone frozen, only the classifier head trained"
            rows.append(["fine-tuning", tuned])
    return rows


def _config_section(config: dict) -> str:
    rows = [[_e(a), _e(b)] for a, b in _config_rows(config)]
    return ("<h2>Run configuration</h2>" + _table(None, rows)
            + "<details><summary>config.json</summary><pre>"
            + _e(json.dumps(config, indent=2, sort_keys=True)) + "</pre></details>")
