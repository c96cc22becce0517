#!/usr/bin/env bash
# Checks what maturin built into DIST (scripts/test-all.sh): exactly one abi3 wheel and one
# sdist, both carrying the licence files and the typing markers, with complete metadata.
set -euo pipefail
dist="${1:?usage: scripts/check-python-dist.sh DIST}"
python3 - "$dist" <<'PY'
import email.parser, pathlib, sys, tarfile, zipfile
dist = pathlib.Path(sys.argv[1])
wheels = sorted(dist.glob("keysmith-*.whl"))
sdists = sorted(dist.glob("keysmith-*.tar.gz"))
assert len(wheels) == 1 and len(sdists) == 1, (wheels, sdists)
wheel, sdist = wheels[0], sdists[0]
# keysmith-0.1.0-cp311-abi3-linux_x86_64.whl: one wheel for every CPython >= 3.11.
assert "-cp311-abi3-" in wheel.name, f"not an abi3 wheel: {wheel.name}"

def check_metadata(text: str, where: str) -> None:
    m = email.parser.Parser().parsestr(text)
    for field in ("Name", "Version", "Summary", "License-Expression", "Requires-Python",
                  "Description-Content-Type"):
        assert m[field], f"{where}: no {field}"
    assert m["License-Expression"] == "Apache-2.0 OR MIT", where
    assert set(m.get_all("License-File") or []) >= {"LICENSE-APACHE", "LICENSE-MIT"}, where
    assert any(c == "Typing :: Typed" for c in m.get_all("Classifier") or []), where
    assert "pip install keysmith" in (m.get_payload() or ""), f"{where}: no readme"
    assert not m.get_all("Project-URL"), f"{where}: URLs (the project has no public home yet)"

with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    check_metadata(z.read(info).decode(), wheel.name)
    for need in ("keysmith/py.typed", "keysmith/_native.pyi", "keysmith/__init__.py"):
        assert need in names, f"{wheel.name}: no {need}"
    assert any(n.startswith("keysmith/_native.") and n.endswith(".so") for n in names), names
    for lic in ("LICENSE-APACHE", "LICENSE-MIT"):
        assert any(n.endswith(".dist-info/licenses/" + lic) for n in names), f"{wheel.name}: no {lic}"
with tarfile.open(sdist) as t:
    names = t.getnames()
    root = names[0].split("/")[0]
    pkg_info = t.extractfile(f"{root}/PKG-INFO")
    assert pkg_info is not None
    check_metadata(pkg_info.read().decode(), sdist.name)
    for need in ("pyproject.toml", "Cargo.lock", "LICENSE-APACHE", "LICENSE-MIT",
                 "README.md", "python/keysmith/py.typed", "python/keysmith/_native.pyi"):
        assert any(n == f"{root}/{need}" or n.endswith("/" + need) for n in names), \
            f"{sdist.name}: no {need}"
print(f"python dist ok: {wheel.name}, {sdist.name}")
PY
