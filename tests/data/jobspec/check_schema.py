#!/usr/bin/env python3
"""Checks docs/jobspec.schema.json against the job spec samples the C++ tests also use.

usage: check_schema.py SCHEMA DATA_DIR

The schema must be a valid JSON Schema 2020-12 document, accept DATA_DIR/valid.json, reject
every DATA_DIR/invalid-*.json, and agree with the parser on the single-field cases below.
Fails when python3-jsonschema is missing (`make deps` installs it).
"""
import copy
import json
import pathlib
import sys

try:
    import jsonschema
except ImportError:
    print("python3-jsonschema is not installed (make deps installs it)", file=sys.stderr)
    sys.exit(1)

# (field path in spec, value, schema accepts?) — each applied to valid.json on its own. They
# mirror rules the parser's tests check, so the two stay in step.
DIGEST = "sha256:" + "0" * 64
CASES = [
    (("spec", "image"), DIGEST, True),
    (("spec", "image"), "stats", True),
    (("spec", "image"), "team/stats:1.2-rc_1", True),
    (("spec", "image"), "stats:" + "0" * 64, True),
    (("spec", "image"), "sha256:0f2a", False),
    (("spec", "image"), "sha256:" + "A" * 64, False),
    (("spec", "image"), "Stats:1.2", False),
    (("spec", "image"), "stats:", False),
    (("spec", "image"), "stats:a:b", False),
    (("spec", "image"), "stats@sha256:abc", False),
    (("spec", "command"), [], False),
    (("spec", "command"), [""], False),
    (("spec", "command"), ["run", ""], True),
    (("spec", "command"), ["run", 42], False),
    (("spec", "args"), ["a\u0000b"], False),
    (("spec", "env"), {"CCE_TOKEN": "x"}, False),
    (("spec", "env"), {"cce_token": "x", "_A1": ""}, True),
    (("spec", "env"), {"1A": "x"}, False),
    (("spec", "env"), {"PORT": 8080}, False),
    (("spec", "workingDir"), "/", True),
    (("spec", "workingDir"), "app", False),
    (("spec", "workingDir"), "/app/", False),
    (("spec", "workingDir"), "/a/./b", False),
    (("spec", "workingDir"), "/a/.../b", True),
    (("spec", "workingDir"), "/a\nb", False),
    (("spec", "datasets", 0, "mountPath"), "/", False),
    (("spec", "datasets", 0, "mountPath"), "/outputs", True),
    (("spec", "datasets", 0, "mountPath"), "/output", False),
    (("spec", "datasets", 0, "mountPath"), "/tmp/x", False),
    (("spec", "datasets", 0, "mountPath"), "/etc", False),
    (("spec", "datasets", 0, "mountPath"), "/data//x", False),
    (("spec", "datasets", 0, "mountPath"), "/data/..", False),
    (("spec", "datasets", 0, "name"), "Claims", False),
    (("spec", "datasets", 0, "name"), "a" * 63, True),
    (("spec", "datasets", 0, "name"), "a" * 64, False),
    (("spec", "datasets", 0, "readOnly"), True, False),
    (("spec", "resources", "cpus"), 0.5, True),
    (("spec", "resources", "cpus"), 0, False),
    (("spec", "resources", "cpus"), "1", False),
    (("spec", "resources", "cpus"), 1000001, False),
    (("spec", "resources", "memoryMiB"), 1.5, False),
    (("spec", "resources", "memoryMiB"), 0, False),
    (("spec", "resources", "timeoutSeconds"), 9007199254740991, True),
    (("spec", "resources", "timeoutSeconds"), 9007199254740992, False),
    (("spec", "resources", "gpus"), 1, False),
    (("metadata", "name"), "Cohort_Stats", False),
    (("metadata", "labels"), {"app.example/tier": "x"}, True),
    (("metadata", "labels"), {"bad key": "x"}, False),
    (("metadata", "labels"), {"team": "a" * 257}, False),
    (("metadata", "labels"), {"team": "a\tb"}, False),
    (("metadata", "owner"), "me", False),
    (("apiVersion",), "cce4long/v2", False),
    (("kind",), "Job", False),
    (("extra",), 1, False),
]


def with_value(doc, path, value):
    out = copy.deepcopy(doc)
    node = out
    for key in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(key, {})
        else:
            node = node[key]
    node[path[-1]] = value
    return out


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    schema = json.loads(pathlib.Path(sys.argv[1]).read_text())
    data = pathlib.Path(sys.argv[2])
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    passed, failed = 0, 0

    def check(name, instance, want_valid):
        nonlocal passed, failed
        errors = list(validator.iter_errors(instance))
        if (not errors) == want_valid:
            passed += 1
            return
        failed += 1
        detail = errors[0].message if errors else "accepted"
        print(f"FAIL {name}: expected {'valid' if want_valid else 'invalid'}: {detail}")

    valid = json.loads((data / "valid.json").read_text())
    check("valid.json", valid, True)
    invalid_files = sorted(data.glob("invalid-*.json"))
    if not invalid_files:
        print("FAIL: no invalid-*.json files")
        failed += 1
    for path in invalid_files:
        check(path.name, json.loads(path.read_text()), False)
    for path, value, want in CASES:
        check(".".join(map(str, path)) + " = " + json.dumps(value)[:40],
              with_value(valid, path, value), want)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
