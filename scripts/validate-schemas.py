#!/usr/bin/env python3
"""Validates JSON documents against the schemas of docs/schemas/.

    validate-schemas.py SCHEMA_DIR PAYLOADS.tsv

PAYLOADS.tsv has one document per line, `NAME<TAB>JSON`; each is validated against
SCHEMA_DIR/NAME.schema.json (Draft 2020-12). Fails when a document does not validate,
when a document has no schema, and when a schema is not a valid schema. Prints which
schemas were exercised and which were not (input documents the run did not send).
"""
import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource


def main() -> int:
    schema_dir, payloads = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    raw = {}
    for path in sorted(schema_dir.glob("*.schema.json")):
        schema = json.loads(path.read_text())
        jsonschema.Draft202012Validator.check_schema(schema)
        raw[path.name.removesuffix(".schema.json")] = schema
    # Each schema by its $id, so "$ref": "key.schema.json" resolves to the file beside it.
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in raw.values()
    )
    schemas = {
        name: jsonschema.Draft202012Validator(
            schema,
            registry=registry,
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        for name, schema in raw.items()
    }
    failures, seen = 0, {}
    for n, line in enumerate(payloads.read_text().splitlines(), 1):
        if "\t" not in line:
            continue
        name, text = line.split("\t", 1)
        if name not in schemas:
            print(f"line {n}: no schema docs/schemas/{name}.schema.json for: {text[:200]}")
            failures += 1
            continue
        seen[name] = seen.get(name, 0) + 1
        for error in schemas[name].iter_errors(json.loads(text)):
            path = "/".join(str(p) for p in error.absolute_path)
            print(f"line {n}: {name}: at /{path}: {error.message}")
            failures += 1
    for name in schemas:
        status = f"{seen[name]} document(s) valid" if name in seen else "not exercised by this run"
        print(f"  {name}: {status}")
    if failures:
        print(f"{failures} schema failure(s)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
