"""Guards of the two-root namespace package (see shared design: Layout)."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
NAMESPACE_DIRS = ("platform", "tenants", "platform/kefu", "tenants/kefu")


def test_no_init_file_in_namespace_folders() -> None:
    stray = [d for d in NAMESPACE_DIRS if (REPO_ROOT / d / "__init__.py").exists()]
    assert stray == [], f"__init__.py breaks the kefu namespace: {stray}"


def test_no_module_name_defined_in_both_roots() -> None:
    def names(root: str) -> set[str]:
        return {p.stem for p in (REPO_ROOT / root / "kefu").iterdir() if p.name != "__pycache__"}

    assert names("platform") & names("tenants") == set()


def test_import_platform_from_repo_root_gives_the_standard_library() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import platform, uuid; print(platform.__file__); platform.system()",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    stdlib = Path(sysconfig.get_paths()["stdlib"]).resolve()
    assert Path(result.stdout.strip()).resolve().parent == stdlib


def test_kefu_spans_both_roots() -> None:
    import kefu

    roots = {Path(p).resolve() for p in kefu.__path__}
    assert roots == {REPO_ROOT / "platform" / "kefu", REPO_ROOT / "tenants" / "kefu"}
