#!/usr/bin/env python3
"""Checks JSON values encoded by src/api/wire.cc against the schemas of docs/api.yaml.

usage: validate_schema.py API_YAML SAMPLES_JSON

SAMPLES_JSON is {"samples": [{"schema": WHERE, "value": VALUE}, ...]}, written by
api_wire_test. WHERE names a schema of API_YAML:
  "Job"                      components.schemas.Job
  "POST /api/v1/users body"  the operation's application/json request body
  "GET /api/v1/jobs 200"     the operation's application/json response for that status

Each value must
  1. validate against the schema (python3-jsonschema; $refs resolved in API_YAML), and
  2. carry exactly the properties the schema declares, at every level where it declares
     some: no key the schema lacks (a field renamed or added on one side only) and no
     declared key missing. The documented schemas rarely say additionalProperties: false
     or list required fields, so without this check drift would validate. The test encodes
     every optional field, so a missing key is drift too.
Exits 1 and names every failing sample and field otherwise. Fails when python3-jsonschema
or python3-yaml is missing (`make deps` installs them).
"""
import json
import sys

try:
    import jsonschema
    import yaml
except ImportError as e:
    print(f"{e.name} is not installed (make deps installs python3-jsonschema and python3-yaml)",
          file=sys.stderr)
    sys.exit(1)


def locate(doc, where):
    """The JSON pointer ("#/...") and the schema WHERE names, or raises KeyError."""
    parts = where.split()
    if len(parts) == 1:
        return "#/components/schemas/" + where, doc["components"]["schemas"][where]
    method, path, what = parts
    op = doc["paths"][path][method.lower()]
    pointer = "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method.lower()
    if what == "body":
        pointer += "/requestBody/content/application~1json/schema"
        return pointer, op["requestBody"]["content"]["application/json"]["schema"]
    pointer += "/responses/" + what + "/content/application~1json/schema"
    return pointer, op["responses"][what]["content"]["application/json"]["schema"]


def resolve(doc, schema):
    """Follows local $refs ("#/components/schemas/X")."""
    while "$ref" in schema:
        node = doc
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        schema = node
    return schema


def declared_properties(doc, schema):
    """The properties an object schema declares, through allOf; None when it declares none."""
    schema = resolve(doc, schema)
    props = None
    if "properties" in schema:
        props = dict(schema["properties"])
    for part in schema.get("allOf", []):
        more = declared_properties(doc, part)
        if more is not None:
            props = {**(props or {}), **more}
    return props


def check_keys(doc, schema, value, path, errors):
    schema = resolve(doc, schema)
    if isinstance(value, dict):
        props = declared_properties(doc, schema)
        if props is None:
            return  # e.g. AuditEntry.details: any value
        for key in value:
            if key not in props:
                errors.append(f"{path}.{key}: encoded but not in the schema")
        # Without a `required` list every declared property must be encoded;
        # with one (objects whose fields depend on the plane's setup, e.g. a
        # Rental's ethereum fields), only those listed.
        must = resolve(doc, schema).get("required", list(props))
        for key in must:
            if key not in value:
                errors.append(f"{path}.{key}: in the schema but not encoded")
        for key, item in value.items():
            if key in props:
                check_keys(doc, props[key], item, f"{path}.{key}", errors)
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            check_keys(doc, schema["items"], item, f"{path}[{i}]", errors)


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[1], encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    with open(sys.argv[2], encoding="utf-8") as f:
        samples = json.load(f)["samples"]
    if not samples:
        print("no samples", file=sys.stderr)
        return 1
    failures = 0
    for sample in samples:
        where, value = sample["schema"], sample["value"]
        try:
            pointer, schema = locate(doc, where)
        except KeyError as e:
            print(f"{where}: no such schema in {sys.argv[1]} ({e})", file=sys.stderr)
            failures += 1
            continue
        errors = []
        # OpenAPI 3.0 schema objects are an extended subset of JSON Schema draft 4. The
        # whole document is the root, so the schema's own $refs ("#/components/...")
        # resolve, with every jsonschema version; draft 4 ignores the $ref's siblings.
        validator = jsonschema.Draft4Validator({**doc, "$ref": pointer})
        for e in sorted(validator.iter_errors(value), key=lambda e: list(e.absolute_path)):
            loc = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path)
            errors.append(f"value{loc}: {e.message}")
        check_keys(doc, schema, value, "value", errors)
        for e in errors:
            print(f"{where}: {e}", file=sys.stderr)
        failures += bool(errors)
    print(f"{len(samples) - failures} of {len(samples)} samples match {sys.argv[1]}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
