import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The development data that ships beside the checkout (../shared/data); CI has it too."""
    path = Path(os.environ.get("POLYKO_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    if not (path / "ko_wiki.jsonl.gz").exists():
        pytest.fail(f"development data not found at {path} (set POLYKO_SHARED_DATA)")
    return path
