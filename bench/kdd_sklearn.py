#!/usr/bin/env python3
"""KDD Cup 1999 anomaly subsets, and scikit-learn's models on them (the yardstick of weir train).

    python3 bench/kdd_sklearn.py prepare DIR     # writes DIR/{http,smtp,sa}_{train,test}.csv
    python3 bench/kdd_sklearn.py measure DIR [SEEDS]   # one JSON line per (subset, model, seed)

The subsets are the anomaly-detection literature's, where attacks are rare (issue 14):
  http  service = 'http' AND logged_in = 1
  smtp  service = 'smtp' AND logged_in = 1
  sa    every normal row and 1 % of the attack rows (every 100th attack row in file order,
        so the subset is the same on every machine)
Training rows come from the 10 % file, test rows from the labelled `corrected` set. Each CSV
has a header row of the column names of kddcup.names and `label` last. The models see the
38 numeric columns (all but protocol_type, service and flag), never the label; attack =
anomaly (label other than `normal.`).

Models, for seeds 0 .. SEEDS-1 (default 5; one seed's ROC-AUC is not a measure, weir's and
scikit-learn's forests each move by ~0.004 on http between seeds): IsolationForest (100
trees, 256 samples) and the reference job's
unsupervised random forest (RandomForestClassifier, 100 trees, max_depth 15, sqrt features,
on the real rows against as many synthetic rows drawn column by column from the real
rows' values; the score is the forest's probability of "synthetic").
"""
import csv
import gzip
import json
import os
import sys
import time

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "kddcup99")
SUBSETS = ("http", "smtp", "sa")
TEXT = ("protocol_type", "service", "flag")


def names():
    cols = []
    with open(os.path.join(DATA, "kddcup.names")) as f:
        next(f)  # the first line lists the classes
        for line in f:
            if ":" in line:
                cols.append(line.split(":")[0].strip())
    return cols + ["label"]


def prepare(out):
    os.makedirs(out, exist_ok=True)
    cols = names()
    svc, li = cols.index("service"), cols.index("logged_in")
    for part, file in (("train", "kddcup.data_10_percent.gz"), ("test", "corrected.gz")):
        writers, files = {}, []
        for s in SUBSETS:
            f = open(os.path.join(out, f"{s}_{part}.csv"), "w", newline="")
            files.append(f)
            writers[s] = csv.writer(f)
            writers[s].writerow(cols)
        attacks = 0
        with gzip.open(os.path.join(DATA, file), "rt") as f:
            for row in csv.reader(f):
                if len(row) != len(cols):
                    continue
                if row[svc] in ("http", "smtp") and row[li] == "1":
                    writers[row[svc]].writerow(row)
                if row[-1] == "normal.":
                    writers["sa"].writerow(row)
                else:
                    if attacks % 100 == 0:
                        writers["sa"].writerow(row)
                    attacks += 1
        for f in files:
            f.close()


def load(path):
    import numpy as np

    with open(path) as f:
        r = csv.reader(f)
        header = next(r)
        rows = list(r)
    keep = [i for i, c in enumerate(header) if c not in TEXT and c != "label"]
    x = np.array([[float(row[i]) for i in keep] for row in rows], dtype=np.float64)
    y = np.array([row[-1] != "normal." for row in rows])
    return x, y


def measure(out, seeds=5):
    import numpy as np
    import sklearn
    from sklearn.ensemble import IsolationForest, RandomForestClassifier

    for s in SUBSETS:
        xtr, _ = load(os.path.join(out, f"{s}_train.csv"))
        xte, yte = load(os.path.join(out, f"{s}_test.csv"))
        for seed in range(seeds):
            # Isolation forest: higher score_samples = more normal.
            t = time.perf_counter()
            m = IsolationForest(n_estimators=100, max_samples=256, random_state=seed, n_jobs=-1).fit(xtr)
            secs = time.perf_counter() - t
            score = -m.score_samples(xte)
            emit(s, "sklearn-iforest", seed, len(xtr), yte, score, secs, sklearn.__version__)
            # Random forest on real against synthetic rows (each column drawn from its values).
            t = time.perf_counter()
            rng = np.random.default_rng(seed)
            synth = np.column_stack([rng.choice(xtr[:, j], size=len(xtr)) for j in range(xtr.shape[1])])
            x = np.vstack([xtr, synth])
            y = np.r_[np.zeros(len(xtr)), np.ones(len(synth))]
            m = RandomForestClassifier(
                n_estimators=100, max_depth=15, max_features="sqrt", random_state=seed, n_jobs=-1
            ).fit(x, y)
            secs = time.perf_counter() - t
            score = m.predict_proba(xte)[:, 1]
            emit(s, "sklearn-rf", seed, len(xtr), yte, score, secs, sklearn.__version__)


def emit(subset, model, seed, train, y, score, secs, version):
    from sklearn.metrics import average_precision_score, roc_auc_score

    print(json.dumps({
        "subset": subset,
        "model": model,
        "seed": seed,
        "train_rows": train,
        "test_rows": len(y),
        "test_anomalies": int(y.sum()),
        "roc_auc": round(float(roc_auc_score(y, score)), 4),
        "pr_auc": round(float(average_precision_score(y, score)), 4),
        "train_seconds": round(secs, 3),
        "sklearn": version,
    }), flush=True)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] not in ("prepare", "measure"):
        sys.exit(__doc__)
    if sys.argv[1] == "prepare":
        prepare(sys.argv[2])
    else:
        measure(sys.argv[2], int(sys.argv[3]) if len(sys.argv) == 4 else 5)
