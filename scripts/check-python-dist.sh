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
# keysmith-0.1.0-cp311-abi3-manylinux_2_34_x86_64.whl: one wheel for every CPython >= 3.11
# on every Linux with glibc >= 2.34 (the PyPI tag, not the local `linux_x86_64`).
assert "-cp311-abi3-" in wheel.name, f"not an abi3 wheel: {wheel.name}"
import re
tag = re.fullmatch(r"keysmith-[^-]+-cp311-abi3-manylinux_2_(\d+)_x86_64\.whl", wheel.name)
assert tag, f"not a manylinux wheel: {wheel.name}"
glibc_minor = int(tag.group(1))

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

def audit_manylinux(z: zipfile.ZipFile, names: list, glibc_minor: int, where: str) -> None:
    """The manylinux rules auditwheel checks, offline: every shared object in the wheel
    needs only the manylinux system libraries or libraries shipped in keysmith.libs/
    (found through an $ORIGIN rpath), and no glibc symbol version above the tag's."""
    import subprocess, tempfile
    system = {"libc.so.6", "libm.so.6", "libgcc_s.so.1", "ld-linux-x86-64.so.2",
              "libpthread.so.0", "libdl.so.2", "librt.so.1", "libutil.so.1",
              "libstdc++.so.6", "libz.so.1", "libexpat.so.1"}
    shipped = {n.rsplit("/", 1)[1] for n in names if n.startswith("keysmith.libs/")}
    objects = [n for n in names if n.endswith(".so") or n.startswith("keysmith.libs/")]
    assert objects, f"{where}: no shared object"
    with tempfile.TemporaryDirectory() as tmp:
        for n in objects:
            path = z.extract(n, tmp)
            dynamic = subprocess.run(["readelf", "-d", path], check=True,
                                     capture_output=True, text=True).stdout
            needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
            foreign = [lib for lib in needed if lib not in system and lib not in shipped]
            assert not foreign, f"{where}: {n} needs {foreign}, neither manylinux nor shipped"
            # The extension finds keysmith.libs/ through its $ORIGIN rpath (a DT_RPATH
            # also serves the libraries it pulls in).
            if not n.startswith("keysmith.libs/") and any(lib in shipped for lib in needed):
                assert "$ORIGIN" in dynamic, f"{where}: {n} finds keysmith.libs/ without $ORIGIN"
            syms = subprocess.run(["readelf", "--dyn-syms", "-W", path], check=True,
                                  capture_output=True, text=True).stdout
            newest = max((int(m) for m in re.findall(r"GLIBC_2\.(\d+)", syms)), default=0)
            assert newest <= glibc_minor, \
                f"{where}: {n} needs GLIBC_2.{newest}, above manylinux_2_{glibc_minor}"
    print(f"manylinux_2_{glibc_minor}: {len(objects)} shared object(s) audited, "
          f"shipped: {sorted(shipped) or 'none'}")


with zipfile.ZipFile(wheel) as z:
    names = z.namelist()
    info = next(n for n in names if n.endswith(".dist-info/METADATA"))
    check_metadata(z.read(info).decode(), wheel.name)
    for need in ("keysmith/py.typed", "keysmith/_native.pyi", "keysmith/__init__.py"):
        assert need in names, f"{wheel.name}: no {need}"
    assert any(n.startswith("keysmith/_native.") and n.endswith(".so") for n in names), names
    for lic in ("LICENSE-APACHE", "LICENSE-MIT"):
        assert any(n.endswith(".dist-info/licenses/" + lic) for n in names), f"{wheel.name}: no {lic}"
    wheel_file = z.read(next(n for n in names if n.endswith(".dist-info/WHEEL"))).decode()
    assert f"Tag: cp311-abi3-manylinux_2_{glibc_minor}_x86_64" in wheel_file.splitlines(), wheel_file
    audit_manylinux(z, names, glibc_minor, wheel.name)
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
