"""polyko stats: terminal tables for a real run (shares the run directory of tests/test_report.py)."""
from __future__ import annotations

import json

import pytest
from rich.console import Console

from pipeline.report import collect
from pipeline.stats_view import build_tables
from test_report import make_real_run


@pytest.fixture(scope="module")
def real_run(shared_data, tmp_path_factory):
    return make_real_run(shared_data, tmp_path_factory)


def _render(summary, width: int = 220) -> str:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    for r in build_tables(summary):
        console.print(r)
    return console.export_text()


def test_stats_tables_show_every_stage_reason_and_source(real_run):
    run_dir, info = real_run
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    text = _render(collect(str(run_dir)))
    d = stats["documents"]
    assert f"in {d['in']:,} = kept {d['kept']:,} + rejected {d['rejected']:,} + errors {d['errors']:,}" in text
    assert "balanced" in text
    for stage, sec in stats["stages"].items():
        for reason, n in sec["drop"].items():
            line = next(ln for ln in text.splitlines() if f" {stage} " in ln and f" {reason} " in ln)
            assert f"{n:,}" in line and f"{100 * n / d['in']:.1f}%" in line, line
    for src, sec in stats["sources"].items():
        line = next(ln for ln in text.splitlines() if ln.strip("│ ").startswith(src))
        assert f"{sec['in']:,}" in line and f"{sec['kept']:,}" in line, line
    assert "langid.score" in text and "< 0.5 (langid.threshold)" in text
    assert "Dedup" in text and "PII entities by type" in text and "Tokens:" in text
    assert any(ln.strip("│ ").startswith("tel ") for ln in text.splitlines())


def test_stats_cli_exit_codes(real_run, tmp_path, capsys):
    from pipeline.cli import main

    run_dir, _ = real_run
    assert main(["stats", str(run_dir), "--width", "200"]) == 0
    out = capsys.readouterr().out
    assert "Funnel" in out and "Signals (" in out
    assert main(["stats", str(run_dir), "--no-docs", "--width", "200"]) == 0
    assert "Signals (" not in capsys.readouterr().out
    unfinished = tmp_path / "unfinished"
    (unfinished / "_polyko_tmp").mkdir(parents=True)
    assert main(["stats", str(unfinished)]) == 2
    assert "unfinished" in capsys.readouterr().err
    # a run whose accounting failed is shown, and the exit status says so
    broken = tmp_path / "broken"
    broken.mkdir()
    stats = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    stats["accounting"] = dict(stats["accounting"], ok=False, problems=["rejected records written (1) != stage drops (2)"])
    (broken / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    assert main(["stats", str(broken), "--width", "200"]) == 1
    assert "MISMATCH" in capsys.readouterr().out
