#!/usr/bin/env python3
"""Makes the SQLite, NPY and pickle inputs of src/gate/data_parsers_test.cc.

Run from this directory with /usr/bin/python3 (stdlib only; no numpy):
    python3 make_data.py
Pickles come from the stdlib pickle module. numpy is not installed here, so
numpy arrays are pickled through stand-in modules registered under numpy's
names whose ndarray/dtype reduce exactly as numpy's do
(numpy.core.multiarray._reconstruct + BUILD state, protocol 5
numpy.core.numeric._frombuffer + an in-band PickleBuffer). NPY files are
written byte by byte as numpy's format.write_array does.
The outputs are deterministic (no random data, fixed rows).
"""
import os
import pickle
import sqlite3
import struct
import sys
import types

HERE = os.path.dirname(os.path.abspath(__file__))

PEOPLE = [
    (f"P-{1000 + i}", f"Person{i} Surname{i * 7 % 13}", f"person{i}.s{i * 7 % 13}@example.org",
     20 + i % 50, 30000.0 + 137.5 * i)
    for i in range(200)
]


def out(name, data):
    with open(os.path.join(HERE, name), "wb") as f:
        f.write(data)


# --- stand-in numpy -------------------------------------------------------
np = types.ModuleType("numpy")
core = types.ModuleType("numpy.core")
multiarray = types.ModuleType("numpy.core.multiarray")
numeric = types.ModuleType("numpy.core.numeric")


class dtype:
    def __init__(self, typestr, order):
        self.typestr, self.order = typestr, order

    def __reduce__(self):
        # numpy: (numpy.dtype, ('f8', False, True), (3, '<', None, None, None, -1, -1, 0))
        return (dtype, (self.typestr, False, True), (3, self.order, None, None, None, -1, -1, 0))


class ndarray:
    def __init__(self, shape, dt, data, fortran=False):
        self.shape, self.dtype, self.data, self.fortran = shape, dt, data, fortran

    def __reduce_ex__(self, protocol):
        if protocol >= 5 and not isinstance(self.data, list):
            return (_frombuffer, (pickle.PickleBuffer(bytearray(self.data)), self.dtype, self.shape,
                                  "F" if self.fortran else "C"))
        return (_reconstruct, (ndarray, (0,), b"b"),
                (1, self.shape, self.dtype, self.fortran, self.data))


def _reconstruct(*a):
    raise RuntimeError("stand-in")


def _frombuffer(*a):
    raise RuntimeError("stand-in")


dtype.__module__ = ndarray.__module__ = "numpy"
_reconstruct.__module__ = "numpy.core.multiarray"
_frombuffer.__module__ = "numpy.core.numeric"
np.dtype, np.ndarray, np.core = dtype, ndarray, core
core.multiarray, core.numeric = multiarray, numeric
multiarray._reconstruct = _reconstruct
numeric._frombuffer = _frombuffer
sys.modules.update({"numpy": np, "numpy.core": core, "numpy.core.multiarray": multiarray,
                    "numpy.core.numeric": numeric})

# A scikit-learn-like estimator (pickled by the default object reduce).
sk = types.ModuleType("sklearn")
sk_lm = types.ModuleType("sklearn.linear_model")
sk_base = types.ModuleType("sklearn.linear_model._base")


class LinearRegression:
    pass


LinearRegression.__module__ = "sklearn.linear_model._base"
sk_base.LinearRegression = LinearRegression
sk.linear_model, sk_lm._base = sk_lm, sk_base
sys.modules.update({"sklearn": sk, "sklearn.linear_model": sk_lm,
                    "sklearn.linear_model._base": sk_base})


def f8(values):
    return b"".join(struct.pack("<d", v) for v in values)


# --- pickles --------------------------------------------------------------
def pickles():
    records = [list(r) for r in PEOPLE[:20]]
    numbers = {"coef": [[0.5, 1.25, -3.0], [2.0, 4.5, 6.75]], "intercept": [0.1, 0.2, 0.3]}
    # 2x3 float64 C order: [[1.5, 2.5, 3.5], [4.5, 5.5, 6.5]]
    a_c = ndarray((2, 3), dtype("f8", "<"), f8([1.5, 2.5, 3.5, 4.5, 5.5, 6.5]))
    # 2x3 int32 Fortran order of [[1, 2, 3], [4, 5, 6]]: stored column by column.
    a_f = ndarray((2, 3), dtype("i4", "<"), struct.pack("<6i", 1, 4, 2, 5, 3, 6), fortran=True)
    a_u = ndarray((2,), dtype("U8", "<"),
                  "P-1000".ljust(8, "\0").encode("utf-32-le") + "P-1001".ljust(8, "\0").encode("utf-32-le"))
    model = LinearRegression()
    model.coef_ = a_c
    model.n_features_in_ = 3
    model.feature_names_in_ = ndarray((3,), dtype("O8", "|"), ["age", "zip", "salary"])
    for proto in range(0, 6):
        out(f"records_p{proto}.pkl", pickle.dumps(records, protocol=proto))
        out(f"numbers_p{proto}.pkl", pickle.dumps(numbers, protocol=proto))
        out(f"ndarray_p{proto}.pkl", pickle.dumps([a_c, a_f, a_u], protocol=proto))
        out(f"model_p{proto}.pkl", pickle.dumps(model, protocol=proto))

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    out("evil_os_system.pkl", pickle.dumps({"model": Evil()}, protocol=2))

    class EvalIt:
        def __reduce__(self):
            return (eval, ("1+1",))

    out("evil_eval_p4.pkl", pickle.dumps([EvalIt()], protocol=4))
    me = []
    me.append(me)
    d = {"name": "Person3 Surname8"}
    d["self"] = d
    out("recursive.pkl", pickle.dumps([me, d], protocol=4))
    out("two_pickles.pkl", pickle.dumps(["first"], protocol=4) + pickle.dumps(["second"], protocol=4))
    out("trailing.pkl", pickle.dumps([1, 2, 3], protocol=4) + b"hidden after STOP: P-1003,P-1004")


# --- SQLite ---------------------------------------------------------------
def sqlite_db(name, setup):
    path = os.path.join(HERE, name)
    for p in (path, path + "-wal", path + "-shm", path + "-journal"):
        if os.path.exists(p):
            os.remove(p)
    db = sqlite3.connect(path)
    setup(db)
    db.commit()
    db.close()


def people(db):
    db.execute("CREATE TABLE people (id TEXT PRIMARY KEY, name TEXT, email TEXT, age INTEGER, "
               "salary REAL)")
    db.executemany("INSERT INTO people VALUES (?, ?, ?, ?, ?)", PEOPLE)
    db.execute("CREATE TABLE counts (band TEXT, n INTEGER, blob BLOB)")
    db.executemany("INSERT INTO counts VALUES (?, ?, ?)",
                   [("20-29", 40, b"\x00\x01\x02binary"), ("30-39", 40, b"text blob")])
    db.execute("CREATE INDEX people_age ON people(age)")
    db.execute("CREATE VIEW adults AS SELECT id, name FROM people WHERE age >= 18")
    db.execute("CREATE TRIGGER people_log AFTER INSERT ON people BEGIN "
               "UPDATE counts SET n = n + 1 WHERE band = 'P-9999'; END")


def deleted(db):
    people(db)
    db.commit()
    # Rows deleted without VACUUM: their bytes stay in freeblocks. Debian builds
    # SQLite with SECURE_DELETE (deleted bytes zeroed); most others do not.
    db.execute("PRAGMA secure_delete=OFF")
    db.execute("DELETE FROM people WHERE CAST(substr(id, 3) AS INTEGER) % 3 = 0")


def wal(db):
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    db.executemany("INSERT INTO t VALUES (?, ?)", [(i, f"row {i}") for i in range(50)])
    db.commit()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def insert_only(db):
    # What pandas.DataFrame.to_sql does: one CREATE TABLE, batched INSERTs.
    db.execute('CREATE TABLE "summary" ("index" INTEGER, "group" TEXT, "mean" REAL, "n" INTEGER)')
    db.execute('CREATE INDEX "ix_summary_index" ON "summary" ("index")')
    rows = [(i, f"group-{i % 37}", 1000.0 / (i + 1), 10 + i % 90) for i in range(5000)]
    for k in range(0, len(rows), 1000):
        db.executemany('INSERT INTO "summary" VALUES (?, ?, ?, ?)', rows[k:k + 1000])
        db.commit()


# --- NPY ------------------------------------------------------------------
def npy(descr, fortran, shape, data, version=1, padding=None, trailing=b""):
    header = "{'descr': %s, 'fortran_order': %s, 'shape': %s, }" % (
        repr(descr), fortran, repr(tuple(shape)))
    fmt = "<H" if version == 1 else "<I"
    hlen = len(header) + 1
    pad = 64 - ((6 + 2 + struct.calcsize(fmt) + hlen) % 64)
    body = header + (padding if padding is not None else " " * pad) + "\n"
    raw = body.encode("latin1")
    return (b"\x93NUMPY" + bytes([version, 0]) + struct.pack(fmt, len(raw)) + raw + data +
            trailing)


def npys():
    out("f8_2d.npy", npy("<f8", False, (3, 4), f8([float(i) + 0.5 for i in range(12)])))
    # [[1, 2, 3], [4, 5, 6]] stored in Fortran order.
    out("i4_fortran.npy", npy("<i4", True, (2, 3), struct.pack("<6i", 1, 4, 2, 5, 3, 6)))
    out("f4_big.npy", npy(">f4", False, (3,), struct.pack(">3f", 1.5, -2.0, 1e10)))
    out("f2.npy", npy("<f2", False, (3,), struct.pack("<3e", 1.0, -0.5, 65504.0)))
    out("b1.npy", npy("|b1", False, (4,), bytes([1, 0, 0, 1])))
    out("u1_v2.npy", npy("|u1", False, (2, 2), bytes([1, 2, 3, 255]), version=2))
    out("strings.npy", npy("<U16", False, (2, 2), b"".join(
        s.ljust(16, "\0").encode("utf-32-le")
        for s in ["P-1000", "person0.s0@example.org"[:16], "P-1001", "Person1 Surname7"])))
    out("structured.npy", npy([("age", "<i8"), ("salary", "<f8")], False, (2,),
                              struct.pack("<qdqd", 34, 52000.5, 41, 61000.25)))
    out("object.npy", npy("|O", False, (3,), pickle.dumps(["P-1000", "P-1001", "P-1002"], protocol=3)))
    out("covert_padding.npy", npy("<f8", False, (2,), f8([1.0, 2.0]),
                                  padding="    secret: P-1000 Person0 Surname0        "))
    out("trailing.npy", npy("<f8", False, (2,), f8([1.0, 2.0]),
                            trailing=b"P-1000,Person0 Surname0,person0.s0@example.org"))
    out("short_data.npy", npy("<f8", False, (3, 4), f8([1.0] * 11)))
    out("huge_shape.npy", npy("<f8", False, (1 << 40, 1 << 40), f8([1.0])))


if __name__ == "__main__":
    pickles()
    sqlite_db("people.sqlite", people)
    sqlite_db("people_deleted.sqlite", deleted)
    sqlite_db("wal.sqlite", wal)
    sqlite_db("insert_only.sqlite", insert_only)
    npys()
