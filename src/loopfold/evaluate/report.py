"""``loopfold report``: PNG figures and an offline HTML page with a 3D view.

From a run folder plus a dataset (and split part): predicted vs true
Ramachandran points per CDR, angular error by position in the loop, local RMSD
by loop length, the training curve, and predicted-vs-true loops in 3D. From a
prediction JSON: the predicted Ramachandran points and loops in 3D. The page's
viewer is a few lines of bundled JavaScript drawing on a canvas: no network.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from loopfold.errors import InvalidFile
from loopfold.io.atomic import atomic_path, write_text
from loopfold.model.losses import angular_distance
from loopfold.structure.rebuild import rebuild_backbone
from loopfold.structure.superpose import kabsch

MAX_3D = 60

VIEWER_JS = """
const data = JSON.parse(document.getElementById('loops').textContent);
const sel = document.getElementById('pick'), cv = document.getElementById('view'), ctx = cv.getContext('2d');
data.forEach((d, i) => { const o = document.createElement('option'); o.value = i; o.textContent = d.label; sel.appendChild(o); });
let rx = 0.3, ry = 0.5, drag = null;
function draw() {
  const d = data[sel.value || 0]; ctx.clearRect(0, 0, cv.width, cv.height);
  const all = [].concat(d.pred, d.true || []); const c = [0, 1, 2].map(k => all.reduce((s, p) => s + p[k], 0) / all.length);
  const R = all.reduce((m, p) => Math.max(m, Math.hypot(p[0] - c[0], p[1] - c[1], p[2] - c[2])), 1);
  const proj = p => { let x = p[0] - c[0], y = p[1] - c[1], z = p[2] - c[2];
    let x1 = x * Math.cos(ry) + z * Math.sin(ry), z1 = -x * Math.sin(ry) + z * Math.cos(ry);
    let y1 = y * Math.cos(rx) - z1 * Math.sin(rx); const s = 0.42 * cv.width / R;
    return [cv.width / 2 + s * x1, cv.height / 2 - s * y1]; };
  const line = (pts, col) => { ctx.strokeStyle = col; ctx.lineWidth = 3; ctx.beginPath();
    pts.forEach((p, i) => { const q = proj(p); i ? ctx.lineTo(q[0], q[1]) : ctx.moveTo(q[0], q[1]); }); ctx.stroke();
    pts.forEach(p => { const q = proj(p); ctx.fillStyle = col; ctx.beginPath(); ctx.arc(q[0], q[1], 3, 0, 6.3); ctx.fill(); }); };
  if (d.true) line(d.true, '#888'); line(d.pred, '#d62728');
  document.getElementById('info').textContent = d.info;
}
cv.onmousedown = e => drag = [e.clientX, e.clientY]; window.onmouseup = () => drag = null;
cv.onmousemove = e => { if (!drag) return; ry += (e.clientX - drag[0]) / 100; rx += (e.clientY - drag[1]) / 100;
  drag = [e.clientX, e.clientY]; draw(); };
sel.onchange = draw; draw();
"""


def _save(fig, path: Path) -> None:  # noqa: ANN001
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def ramachandran_png(pred: dict[str, np.ndarray], true: dict[str, np.ndarray] | None, path: Path) -> None:
    """Per CDR: (phi, psi) of predictions (red) over the true ones (grey). Values ``[N, 2]`` degrees."""
    plt = _plt()
    cdrs = sorted(pred)
    cols = min(3, len(cdrs))
    rows = (len(cdrs) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.2 * rows), squeeze=False)
    for ax, cdr in zip(axes.flat, cdrs, strict=False):
        if true is not None and cdr in true:
            ax.scatter(true[cdr][:, 0], true[cdr][:, 1], s=3, c="0.6", label="true")
        ax.scatter(pred[cdr][:, 0], pred[cdr][:, 1], s=3, c="tab:red", alpha=0.6, label="predicted")
        ax.set(xlim=(-180, 180), ylim=(-180, 180), title=cdr, xlabel="phi", ylabel="psi")
    for ax in list(axes.flat)[len(cdrs) :]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    _save(fig, path)


def _loop_rows(df: pd.DataFrame, angles: np.ndarray, coords: list) -> list[dict]:
    rows = []
    for i, row in enumerate(df.itertuples(index=False)):
        n = len(row.phi)
        a, b = len(row.stem_n), n - len(row.stem_c)
        xyz = coords[i] if coords[i] is not None else rebuild_backbone(angles[i, :n])
        rec = {"cdr": row.cdr, "id": row.loop_id, "length": len(row.sequence), "a": a, "b": b,
               "pred_ang": angles[i, :n, :2], "true_ang": np.stack([row.phi, row.psi], 1), "xyz": xyz,
               "true_xyz": row.coords}  # fmt: skip
        rows.append(rec)
    return rows


def run_report(run_dir: Path, data: Path, split: Path | None, part: str, out: Path) -> dict:
    """Figures and page for a trained model on one split part; returns a summary."""
    from loopfold.model.dataset import load_part
    from loopfold.pipeline.predictor import Predictor

    predictor = Predictor(run_dir)
    df = load_part(data, split, part, predictor.cfg.max_len)
    if len(df) == 0:
        raise InvalidFile(f"{data}: no usable loops in part {part!r}")
    _, angles, coords, _ = predictor.predict_frame(df)
    rows = _loop_rows(df, angles, coords)
    out.mkdir(parents=True, exist_ok=True)
    plt = _plt()
    by_pred = {c: np.concatenate([r["pred_ang"][r["a"] : r["b"]] for r in rows if r["cdr"] == c]) for c in set(df.cdr)}
    by_true = {c: np.concatenate([r["true_ang"][r["a"] : r["b"]] for r in rows if r["cdr"] == c]) for c in set(df.cdr)}
    ramachandran_png(by_pred, by_true, out / "ramachandran.png")
    # error by position from the loop start
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for cdr in sorted(set(df.cdr)):
        errs: dict[int, list[float]] = {}
        for r in rows:
            if r["cdr"] != cdr:
                continue
            e = angular_distance(r["pred_ang"], r["true_ang"]).mean(1)
            for k in range(len(e)):
                if np.isfinite(e[k]):
                    errs.setdefault(k - r["a"], []).append(float(e[k]))
        ks = sorted(errs)
        ax.plot(ks, [np.mean(errs[k]) for k in ks], marker=".", label=cdr)
    ax.axvline(0, c="0.7", lw=0.8)
    ax.set(xlabel="position from loop start (negative: N-stem)", ylabel="mean |error| of phi, psi (deg)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    _save(fig, out / "error_by_position.png")
    # RMSD by loop length
    fig, ax = plt.subplots(figsize=(6, 3.4))
    summary: dict = {"n_loops": len(rows), "rmsd_by_cdr": {}}
    from loopfold.structure.superpose import superposed_rmsd

    for cdr in sorted(set(df.cdr)):
        pts = [(r["length"], superposed_rmsd(r["xyz"], r["true_xyz"])) for r in rows
               if r["cdr"] == cdr and r["true_xyz"] is not None]  # fmt: skip
        pts = [p for p in pts if np.isfinite(p[1])]
        if pts:
            x, y = zip(*pts, strict=True)
            ax.scatter(np.array(x) + np.random.default_rng(0).uniform(-0.2, 0.2, len(x)), y, s=6, label=cdr)
            summary["rmsd_by_cdr"][cdr] = round(float(np.mean(y)), 3)
    ax.set(xlabel="loop length", ylabel="rmsd_local (Å)")
    ax.legend(fontsize=7, ncol=3)
    fig.tight_layout()
    _save(fig, out / "rmsd_by_length.png")
    images = ["ramachandran.png", "error_by_position.png", "rmsd_by_length.png"]
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        from loopfold.evaluate.curves import plot_curve

        plot_curve([json.loads(x) for x in metrics.read_text().splitlines() if x.strip()], out / "training_curve.png")
        images.append("training_curve.png")
    loops3d = []
    for r in rows[:MAX_3D]:
        pred_ca, true = r["xyz"][:, 1], r["true_xyz"]
        entry = {"label": f"{r['cdr']} {r['id']}", "info": f"{r['cdr']} length {r['length']}"}
        if true is not None and np.isfinite(true[:, 1]).all():
            rot, tr = kabsch(pred_ca, true[:, 1])
            pred_ca = pred_ca @ rot.T + tr
            entry["true"] = np.round(true[:, 1], 2).tolist()
            entry["info"] += f", CA RMSD {np.sqrt(((pred_ca - true[:, 1]) ** 2).sum(1).mean()):.2f} Å"
        entry["pred"] = np.round(pred_ca, 2).tolist()
        loops3d.append(entry)
    write_page(out, f"loopfold report: {run_dir.name} on {data.name} ({part})", images, loops3d)
    return summary


def read_predictions(path: Path) -> list[dict]:
    """The result records of a prediction JSON document (``--json``) or JSON-lines file (``--jsonl``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidFile(f"{path}: cannot read ({exc})") from None
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("results"), list):
        return doc["results"]
    if isinstance(doc, dict) and "id" in doc:  # a JSON-lines file holding one record
        return [doc]
    records = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidFile(f"{path}: line {n}: not a loopfold prediction record ({exc.msg})") from None
        if not isinstance(rec, dict) or "id" not in rec:
            raise InvalidFile(f"{path}: line {n}: not a loopfold prediction record (no id)")
        records.append(rec)
    if not records:
        raise InvalidFile(f"{path}: not a loopfold prediction JSON or JSON-lines file")
    return records


def json_report(path: Path, out: Path) -> dict:
    """Figures and page for a prediction JSON document or JSON-lines file (no true structures)."""
    results = read_predictions(path)
    out.mkdir(parents=True, exist_ok=True)
    by: dict[str, list] = {}
    loops3d: list[dict] = []
    for res in results:
        for lp in res.get("loops", []):
            ang = np.array([[np.nan if a is None else a, np.nan if b is None else b]
                            for a, b in zip(lp["phi"], lp["psi"], strict=True)], dtype=float)  # fmt: skip
            by.setdefault(lp["cdr"], []).append(ang)
            if len(loops3d) < MAX_3D:
                loops3d.append({"label": f"{res['id']} {lp['cdr']}", "info": f"{lp['cdr']} {lp['sequence']}",
                                "pred": lp["coords"]["CA"]})  # fmt: skip
    if not by:
        raise InvalidFile(f"{path}: holds no loops")
    ramachandran_png({c: np.concatenate(v) for c, v in by.items()}, None, out / "ramachandran.png")
    write_page(out, f"loopfold predictions: {path.name}", ["ramachandran.png"], loops3d, has_true=False)
    return {"n_loops": sum(len(v) for v in by.values())}


def write_page(out: Path, title: str, images: list[str], loops3d: list[dict], has_true: bool = True) -> None:
    """``index.html``: the figures and the 3D viewer, with everything inline (works offline); the
    legend names true loops only when there are some (``has_true``)."""
    legend = ('CA traces: predicted <span style="color:#d62728">red</span>, true grey (superposed).' if has_true
              else 'CA traces of the predicted loops (<span style="color:#d62728">red</span>); no reference '
                   'structure was given, so nothing here is compared with a true loop.')  # fmt: skip
    imgs = "\n".join(f'<figure><img src="{html.escape(i)}" alt="{html.escape(i)}"></figure>' for i in images)
    # every <, > and & as a JSON escape: no id can close the script block or open a comment in it
    data = json.dumps(loops3d).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}img{{max-width:100%}}canvas{{border:1px solid #ccc}}</style>
</head><body><h1>{html.escape(title)}</h1>{imgs}
<h2>Loops in 3D</h2><p>{legend} Drag to rotate.</p><select id="pick"></select> <span id="info"></span><br>
<canvas id="view" width="520" height="420"></canvas>
<script type="application/json" id="loops">{data}</script><script>{VIEWER_JS}</script></body></html>"""
    write_text(out / "index.html", page)
