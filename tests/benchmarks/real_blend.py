"""Tuning: a third member of the forest + linear blend (v6), on the real sets' tuning part.

python -m tests.benchmarks.real_blend [--part tune] [--members rbf:1:0.3,et,lrq]
    [--cs 0.03,0.1,0.3] [--cells consep:random:100,...] [--seeds 0,1,2,3,4] [--families]

Per trial the app's forest (``fit_forest``: its out-of-bag probabilities) and the linear model
(``core.ml.linear``: out-of-fold, both column choices) are fitted once, as ``add_linear`` does,
and each extra member's out-of-sample probabilities of the labels (out-of-bag for the extra
trees, 5 stratified folds otherwise) are computed next to them. Rules, scored on the judged
objects (balanced accuracy; points against ``v6`` ± the sd of the paired difference):

* ``v6``: the (columns, weight) ``add_linear`` chooses (the default);
* ``geo``: the same choice on the weighted mean of the log-probabilities;
* ``ll``: (columns, weight) chosen by the class-balanced log-loss of the same out-of-sample
  probabilities instead of their balanced accuracy;
* ``lrC``: the linear model's strength C (``--cs``) chosen out of fold with its columns and weight;
* ``v6+M``: the weights of forest / linear / M on a grid of quarters summing to 1, chosen by the
  same out-of-sample balanced accuracy (ties: the v6 weights, then the smaller weight of M); and
  ``M alone``. Members M, each on the forest's columns: ``et`` (100 extra trees, bootstrap,
  balanced, out-of-bag), ``rbf[:C[:g[:m]]]`` (an RBF kernel, gamma g / columns, approximated
  by m Nystroem components on the clipped, standardized columns, then a balanced L2 logistic
  regression; default 1, 1, 300), ``lrq[:C]`` (the logistic regression on the labels' quantiles
  as normal scores instead of clipping and standardizing), ``knn`` (10 nearest, distance
  weighted), ``svc`` (scikit-learn's RBF SVC with Platt probabilities).

``--families`` adds the intensity distribution and boundary shape columns of commit e9a414a
(``families_e9a414a.py``; no neighbours' means of them) to the cached measurements.

Only the images of the labels are judged (CoNSeP random, MitoCheck random and grouped: one
mosaic image), where the blend applies. ``cpu s``: process seconds of each part (the out-of-
sample estimate and the final fit), one BLAS thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

import numpy as np

from tests.benchmarks.real import app_measurements, load_set, scores, trials

GRID = [
    (round(1 - a - b, 2), a, b)
    for a in (0, 0.25, 0.5, 0.75, 1.0)
    for b in (0, 0.25, 0.5, 0.75, 1.0)
    if a + b <= 1.0 + 1e-9
]


def _prep(x, cols):
    xc = np.asarray(x[:, cols], np.float64)
    lo, hi = np.percentile(xc, [1, 99], 0)
    xc = np.clip(xc, lo, hi)
    mu, sd = xc.mean(0), xc.std(0)
    sd = np.where(sd > 1e-12, sd, 1.0)
    return lambda v: (np.clip(np.asarray(v[:, cols], np.float64), lo, hi) - mu) / sd, (xc - mu) / sd


def _member_fit(kind, x, y, cols, seed, n_classes):
    """proba(x) -> (N, n_classes) of member ``kind`` fitted on (x, y)."""
    from sklearn.kernel_approximation import Nystroem
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.svm import SVC

    prep, z = _prep(x, cols)
    if kind.startswith("rbf"):  # rbf[:C[:gamma x d[:components]]]
        opt = [float(v) for v in kind.split(":")[1:]] + [1.0, 1.0, 300][len(kind.split(":")) - 1 :]
        ny = Nystroem(gamma=opt[1] / z.shape[1], n_components=min(len(z), int(opt[2])),
                      random_state=seed)  # fmt: skip
        f = ny.fit_transform(z)
        est = LogisticRegression(C=opt[0], class_weight="balanced", max_iter=300).fit(f, y)

        def go(v):
            return est.predict_proba(ny.transform(prep(v)))
    elif kind.startswith("lrq"):  # the labels' quantiles (normal scores), then L2 LR
        from sklearn.preprocessing import QuantileTransformer

        c = float(kind.split(":")[1]) if ":" in kind else 0.1
        xr = np.asarray(x[:, cols], np.float64)
        qt = QuantileTransformer(n_quantiles=min(len(xr), 100), output_distribution="normal",
                                 random_state=seed).fit(xr)  # fmt: skip
        est = LogisticRegression(C=c, class_weight="balanced", max_iter=300).fit(
            qt.transform(xr), y
        )

        def go(v):
            return est.predict_proba(qt.transform(np.asarray(v[:, cols], np.float64)))
    elif kind == "svc":
        est = SVC(C=1.0, gamma="scale", class_weight="balanced", probability=True,
                  random_state=seed).fit(z, y)  # fmt: skip

        def go(v):
            return est.predict_proba(prep(v))
    elif kind == "knn":
        est = KNeighborsClassifier(10, weights="distance").fit(z, y)

        def go(v):
            return est.predict_proba(prep(v))
    else:
        raise ValueError(kind)

    def proba(v):
        out = np.zeros((len(v), n_classes), np.float64)
        out[:, est.classes_] = go(v)
        return out

    return proba


def _member(kind, x, y, xt, cols, seed, n_classes):
    """(out-of-sample probabilities of the labels, probabilities of the judged rows)."""
    from sklearn.ensemble import ExtraTreesClassifier
    from sklearn.model_selection import StratifiedKFold

    if kind == "et":
        est = ExtraTreesClassifier(100, class_weight="balanced", bootstrap=True, oob_score=True,
                                   random_state=seed, n_jobs=1)  # fmt: skip
        est.fit(x[:, cols], y)
        oob = np.zeros((len(y), n_classes))
        oob[:, est.classes_] = np.nan_to_num(est.oob_decision_function_)
        te = np.zeros((len(xt), n_classes))
        te[:, est.classes_] = est.predict_proba(xt[:, cols])
        return oob, te
    oof = np.zeros((len(y), n_classes))
    k = max(2, min(5, int(np.bincount(y).max())))
    for a, b in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        if len(np.unique(y[a])) < 2:
            continue
        oof[b] = _member_fit(kind, x[a], y[a], cols, seed, n_classes)(x[b])
    return oof, _member_fit(kind, x, y, cols, seed, n_classes)(xt)


def old_families(s) -> tuple[list[str], np.ndarray]:
    """The columns of commit e9a414a's intensity distribution and boundary shape families
    (``families_e9a414a.py``) of every labelled object of ``s``, cached."""
    from svetlana.core.objects.stains import is_brightfield_rgb, stain_channels
    from tests.benchmarks.families_e9a414a import FamilyAccumulators
    from tests.benchmarks.real import CACHE

    path = CACHE / f"{s.name}_families_e9a414a.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            return [str(n) for n in z["names"]], z["values"]
    rows: dict = {}
    names: list[str] = []
    for im, (image, labels) in s.images.items():
        lab = np.asarray(labels)
        ids = np.unique(lab[lab > 0])
        index = np.full(int(lab.max()) + 1, -1, np.int64)
        index[ids] = np.arange(len(ids))
        r = index[lab]
        yy, xx = np.nonzero(r >= 0)
        rr = r[yy, xx]
        cnt = np.bincount(rr, minlength=len(ids))
        cen = np.stack([np.bincount(rr, yy, len(ids)), np.bincount(rr, xx, len(ids))], 1)
        cen /= np.maximum(cnt, 1)[:, None]
        chans = [np.asarray(c, np.float32) for c in np.asarray(image)]
        prefixes = [f"ch{c}_" for c in range(len(chans))]
        if is_brightfield_rgb(image):
            chans += [np.asarray(c, np.float32) for c in stain_channels(image)]
            prefixes += ["hema_", "eosin_"]
        ranges = [tuple(np.percentile(c, [1, 99.8])) for c in chans]
        ranges = [(lo, hi if hi > lo else lo + 1) for lo, hi in ranges]
        acc = FamilyAccumulators(len(ids), 2, len(chans), ranges, cen, (1.0, 1.0))
        acc.add_band(0, r.shape[0], r, chans)
        cols = acc.finish(prefixes)
        names = list(cols)
        v = np.nan_to_num(np.stack([cols[n] for n in names], 1))
        for i, o in enumerate(ids):
            rows[(im, int(o))] = v[i]
    values = np.stack([rows[k] for k in s.keys]).astype(np.float32)
    np.savez(path, names=np.array(names), values=values)
    return names, values


def _bal(y, p):
    return scores(y, p.argmax(1))[1]


def trial(ctx, tr, te, seed, members, cs):
    from threadpoolctl import threadpool_limits

    from svetlana.core.ml import linear as L
    from svetlana.core.ml.forest import fit_forest

    s, x = ctx
    y, yt = s.y[tr], s.y[te]
    k = len(s.class_names)
    out, secs = {}, {}
    t = time.process_time()
    m = fit_forest(x[tr], y, s.class_names, s.names, seed=seed)
    secs["forest"] = time.process_time() - t
    est = m.estimator
    f_oob = np.zeros((len(y), k))
    f_oob[:, est.classes_] = np.nan_to_num(est.oob_decision_function_)
    f_te = np.zeros((len(te), k))
    f_te[:, est.classes_] = est.predict_proba(
        np.nan_to_num(x[te]) if m.columns is None else np.nan_to_num(x[te])[:, m.columns]
    )
    xtr = np.nan_to_num(x[tr]).astype(np.float64)
    xte = np.nan_to_num(x[te]).astype(np.float64)
    colsets = [None] if m.columns is None else [None, m.columns]
    saved_c = L.C
    lin = {}  # (C, colset index) -> (oof, te)
    with threadpool_limits(1):
        for c in cs:
            L.C = c
            for i, cols in enumerate(colsets):
                t = time.process_time()
                oof = L.out_of_fold(xtr, y, cols, seed, k).astype(np.float64)
                lm = L.fit_linear(xtr, y, cols, seed)
                p = np.zeros((len(te), k))
                p[:, lm.classes] = lm.predict_proba(xte)
                secs[f"linear C{c} {i}"] = time.process_time() - t
                lin[(c, i)] = (oof, p)
    L.C = saved_c

    def best_v6(c):
        best = None
        for i in range(len(colsets)):
            w, sc = L.choose_weight(f_oob, lin[(c, i)][0], y)
            if best is None or sc[w] > best[0] + 1e-9:
                best = (sc[w], i, w)
        return best

    ok0 = f_oob.sum(1) > 0
    sc6, i6, w6 = best_v6(saved_c)
    lo, lt = lin[(saved_c, i6)]
    out["v6"] = _bal(yt, (1 - w6) * f_te + w6 * lt)
    out["v6 w"] = w6

    # geometric: the weighted mean of the log-probabilities (same columns / weight choice)
    def geo(a, b, w):
        return (1 - w) * np.log(a + 1e-3) + w * np.log(b + 1e-3)

    best = None
    for i in range(len(colsets)):
        for w in L.WEIGHTS:
            sc = scores(y[ok0], geo(f_oob[ok0], lin[(saved_c, i)][0][ok0], w).argmax(1))[1]
            if best is None or sc > best[0] + 1e-9:
                best = (sc, i, w)
    _, i, w = best
    out["geo"] = _bal(yt, geo(f_te, lin[(saved_c, i)][1], w))
    # ll: the (columns, weight) with the best class-balanced log-loss of the same probabilities
    # (a smoother criterion than the argmax's balanced accuracy)
    cw = 1.0 / np.bincount(y[ok0], minlength=k)[y[ok0]]
    best = None
    for i in range(len(colsets)):
        for w in L.WEIGHTS:
            pb = (1 - w) * f_oob[ok0] + w * lin[(saved_c, i)][0][ok0]
            ll = -np.sum(cw * np.log(pb[np.arange(len(pb)), y[ok0]] + 1e-3))
            if best is None or ll < best[0] - 1e-9:
                best = (ll, i, w)
    _, i, w = best
    out["ll"] = _bal(yt, (1 - w) * f_te + w * lin[(saved_c, i)][1])
    out["ll w"] = w
    if len(cs) > 1:
        bb = max(((best_v6(c), c) for c in cs), key=lambda r: (round(r[0][0], 9), r[1] == saved_c))
        (_, i, w), c = bb
        out["lrC"] = _bal(yt, (1 - w) * f_te + w * lin[(c, i)][1])
        out["lrC C"] = c
    ok = f_oob.sum(1) > 0
    cols_forest = np.arange(x.shape[1]) if m.columns is None else m.columns
    for kind in members:
        t = time.process_time()
        with threadpool_limits(1):
            mo, mt = _member(kind, xtr, y, xte, cols_forest, seed, k)
        secs[kind] = time.process_time() - t
        best = None
        for wf, wl, wm in GRID:
            p = wf * f_oob[ok] + wl * lo[ok] + wm * mo[ok]
            sc = scores(y[ok], p.argmax(1))[1]
            key = (round(sc, 9), (wl == w6 and wm == 0), -wm)
            if best is None or key > best[0]:
                best = (key, (wf, wl, wm))
        wf, wl, wm = best[1]
        out[f"v6+{kind}"] = _bal(yt, wf * f_te + wl * lt + wm * mt)
        out[f"{kind} w"] = wm
        out[f"{kind} alone"] = _bal(yt, mt)
    return out, secs


def main(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--part", default="tune")
    p.add_argument("--members", default="rbf:1:0.3,et,lrq")
    p.add_argument(
        "--cs", default="0.03,0.1,0.3", help="linear strengths to choose among (lrC rule)"
    )
    p.add_argument(
        "--cells",
        default="consep:random:100,consep:random:300,consep:random:1000,mitocheck:random:100,"
        "mitocheck:random:300,mitocheck:random:500,mitocheck:grouped:100,mitocheck:grouped:300",
    )
    p.add_argument("--seeds", default="0,1,2,3,4")
    p.add_argument("--families", action="store_true", help="e9a414a's families added")
    a = p.parse_args(argv)
    members = [m for m in a.members.split(",") if m]
    cs = [float(c) for c in a.cs.split(",")]
    seeds = [int(v) for v in a.seeds.split(",")]
    print(f"# part {a.part}, seeds {seeds}, members {members}, C {cs}, "
          f"load {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
    sets = {}
    for cell in a.cells.split(","):
        name, split, n = cell.split(":")
        if name not in sets:
            s = load_set(name)
            names, feats = app_measurements(s)
            if a.families:
                fn, fv = old_families(s)
                names, feats = tuple(names) + tuple(fn), np.concatenate([feats, fv], 1)
                print(f"  {name}: {len(fn)} columns of e9a414a's families added", flush=True)
            s.names = names
            sets[name] = (s, feats)
        ctx = sets[name]
        rows, secs = [], []
        for seed in seeds:
            for tr, te in trials(ctx[0], a.part, split, int(n), seed):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    r, sc = trial(ctx, tr, te, seed, members, cs)
                rows.append(r)
                secs.append(sc)
        if not rows:
            continue
        keys = [k for k in rows[0] if not k.endswith((" w", " C"))]

        # points against v6, and the sd of the paired difference over trials
        def diff(k, rows=rows):
            d = 100 * (np.array([r[k] for r in rows]) - np.array([r["v6"] for r in rows]))
            return f" ({d.mean():+.1f} ± {d.std():.1f})"

        txt = " | ".join(
            f"{k} {np.mean([r[k] for r in rows]):.3f}" + ("" if k == "v6" else diff(k))
            for k in keys
        )
        ws = " ".join(
            f"{k}=" + ",".join(f"{r[k]:g}" for r in rows)
            for k in rows[0]
            if k.endswith((" w", " C"))
        )
        cpu = " ".join(f"{k} {np.mean([s_.get(k, 0.0) for s_ in secs]):.1f}" for k in secs[-1])
        print(f"| {cell} | {len(rows)} | {txt} | {ws} | cpu s: {cpu} |", flush=True)
    return 0


if __name__ == "__main__":
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sys.exit(main())
