#!/usr/bin/env python3
"""Validates JSON documents against the schemas of docs/schemas/.

    validate-schemas.py [--renamed-fields-fail] SCHEMA_DIR PAYLOADS.tsv

PAYLOADS.tsv has one document per line, `NAME<TAB>JSON`; each is validated against
SCHEMA_DIR/NAME.schema.json (Draft 2020-12). Fails when a document does not validate,
when a document has no schema, and when a schema is not a valid schema. Prints which
schemas were exercised and which were not (input documents the run did not send).

With --renamed-fields-fail, each document is also changed by renaming one field (in the
document, or in its first element when it is an array of objects; every field in turn)
and the changed document must NOT validate; so must the document with an unknown field
added: the schemas are closed, so a renamed field is caught. A document with no field to
rename (an empty array or object) is skipped.
"""
import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource


def renamed(doc):
    """Copies of `doc` with one field renamed, each field in turn (or none)."""
    target = doc
    if isinstance(doc, list):
        target = next((d for d in doc if isinstance(d, dict) and d), None)
    if not isinstance(target, dict):
        return
    variants = [(key, {(k + "_renamed" if k == key else k): v for k, v in target.items()})
                for key in target]
    # And a field nobody knows added: the schema is closed (additionalProperties false).
    variants.append(("(an unknown field added)", {**target, "unknown_field": None}))
    for key, changed in variants:
        if isinstance(doc, list):
            i = doc.index(target)
            yield key, doc[:i] + [changed] + doc[i + 1:]
        else:
            yield key, changed


def main() -> int:
    args = sys.argv[1:]
    mutate = "--renamed-fields-fail" in args
    args = [a for a in args if a != "--renamed-fields-fail"]
    schema_dir, payloads = pathlib.Path(args[0]), pathlib.Path(args[1])
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
        doc = json.loads(text)
        for error in schemas[name].iter_errors(doc):
            path = "/".join(str(p) for p in error.absolute_path)
            print(f"line {n}: {name}: at /{path}: {error.message}")
            failures += 1
        if mutate:
            for key, changed in renamed(doc):
                if schemas[name].is_valid(changed):
                    print(f"line {n}: {name}: still valid with field {key!r} renamed or added "
                          "(the schema is not closed)")
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
