"""Building ``stats.json`` from Beam counters, the accounting check, and ``load_stats``.

The schema is documented in docs/output-format.md; this module is its single writer.
Everything here is plain Python over a ``{counter name: value}`` dict, so it is tested without
a runner; ``counters_from_result`` is the only Beam-facing function.
"""
from __future__ import annotations

import json
from collections import defaultdict
from typing import Any, Iterable, Mapping, Optional

SCHEMA_VERSION = 1
NAMESPACE = "polyko"
STAGE_ORDER = ["read", "normalize", "langid", "quality", "dedup", "pii", "tokenize"]
# Stages that can drop documents (tokenize only consumes the kept set).
DROPPING_STAGES = ["normalize", "langid", "quality", "dedup", "pii"]


class StatsError(RuntimeError):
    pass


def counters_from_result(result: Any) -> dict[str, int]:
    """All ``polyko`` counters of a finished Beam pipeline, summed over steps.

    Committed values where the runner reports them (exactly-once), attempted otherwise.
    """
    from apache_beam.metrics.metric import MetricsFilter

    query = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))
    out: dict[str, int] = defaultdict(int)
    for res in query.get("counters", []):
        value = res.committed if res.committed is not None else res.attempted
        out[res.key.metric.name] += int(value or 0)
    return dict(out)


def _sources(counters: Mapping[str, int]) -> list[str]:
    prefix, suffix = "read.source.", ".documents"
    return sorted(k[len(prefix):-len(suffix)] for k in counters if k.startswith(prefix) and k.endswith(suffix))


def _stage_section(stage: str, counters: Mapping[str, int]) -> dict[str, Any]:
    drops: dict[str, int] = {}
    counts: dict[str, int] = {}
    for name, value in counters.items():
        if name.startswith(f"{stage}.drop."):
            drops[name[len(stage) + 6:]] = value
        elif name.startswith(f"{stage}.count."):
            counts[name[len(stage) + 7:]] = value
    return {
        "in": counters.get(f"{stage}.in", 0),
        "kept": counters.get(f"{stage}.kept", 0),
        "dropped": sum(drops.values()),
        "drop": dict(sorted(drops.items())),
        "bytes_in": counters.get(f"{stage}.bytes_in", 0),
        "bytes_out": counters.get(f"{stage}.bytes_out", 0),
        "counts": dict(sorted(counts.items())),
    }


def _source_section(source: str, stages: Iterable[str], counters: Mapping[str, int]) -> dict[str, Any]:
    drop: dict[str, dict[str, int]] = {}
    counts: dict[str, dict[str, int]] = {}
    for stage in stages:
        prefix = f"{stage}.source.{source}."
        for name, value in counters.items():
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            if rest.startswith("drop."):
                drop.setdefault(stage, {})[rest[5:]] = value
            elif rest.startswith("count."):
                counts.setdefault(stage, {})[rest[6:]] = value
    n_in = counters.get(f"read.source.{source}.documents", 0)
    rejected = sum(sum(v.values()) for v in drop.values())
    return {
        "in": n_in,
        "kept": counters.get(f"output.source.{source}.kept", 0),
        "rejected": rejected,
        "bytes_in": counters.get(f"read.source.{source}.bytes", 0),
        "bytes_out": counters.get(f"output.source.{source}.bytes", 0),
        "drop": drop,
        "counts": counts,
    }


def build_stats(counters: Mapping[str, int], *, stages_enabled: list[str],
                run_info: Optional[Mapping[str, Any]] = None,
                stage_stats: Optional[Mapping[str, Any]] = None) -> dict[str, Any]:
    """The ``stats.json`` dict (schema in docs/output-format.md) including the accounting check."""
    counters = {k: int(v) for k, v in counters.items()}
    stages = {s: _stage_section(s, counters) for s in STAGE_ORDER if s != "read" and s in stages_enabled}
    read_counts = {k[len("read.count."):]: v for k, v in counters.items() if k.startswith("read.count.")}
    errors_by_kind = {k[len("read.error."):]: v for k, v in counters.items() if k.startswith("read.error.")}
    errors_by_file = {k[len("read.error_file."):]: v for k, v in counters.items()
                      if k.startswith("read.error_file.")}
    n_in = counters.get("read.records", 0)
    n_errors = counters.get("read.errors", 0)
    n_rejected = sum(stages[s]["dropped"] for s in DROPPING_STAGES if s in stages)
    n_kept = counters.get("output.kept", 0)
    dropping = [s for s in DROPPING_STAGES if s in stages]
    stats: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "status": "ok",
        **dict(run_info or {}),
        "stage_order": STAGE_ORDER,
        "stages_enabled": [s for s in STAGE_ORDER if s in stages_enabled],
        "documents": {"in": n_in, "kept": n_kept, "rejected": n_rejected, "errors": n_errors},
        "bytes": {"in": counters.get("read.bytes_out", 0), "kept": counters.get("output.bytes", 0)},
        "read": {
            "records": n_in,
            "documents": counters.get("read.documents", 0),
            "errors": n_errors,
            "files": counters.get("read.files", 0),
            "bytes_out": counters.get("read.bytes_out", 0),
            "counts": dict(sorted(read_counts.items())),
        },
        "stages": stages,
        "sources": {s: _source_section(s, dropping, counters) for s in _sources(counters)},
        "errors_by_file": dict(sorted(errors_by_file.items())),
        "errors_by_kind": dict(sorted(errors_by_kind.items())),
        "counters": dict(sorted(counters.items())),
    }
    stats["accounting"] = check_accounting(stats, counters)
    if not stats["accounting"]["ok"]:
        stats["status"] = "accounting_mismatch"
    for name, value in (stage_stats or {}).items():
        stats[name] = value
    return stats


def check_accounting(stats: Mapping[str, Any], counters: Mapping[str, int]) -> dict[str, Any]:
    """``in == kept + rejected + errors``, plus cheap cross-checks between independent counters:
    what the writers wrote, and each stage's input equal to the previous stage's output."""
    d = stats["documents"]
    problems: list[str] = []
    if d["in"] != d["kept"] + d["rejected"] + d["errors"]:
        problems.append(f"documents in ({d['in']}) != kept ({d['kept']}) + rejected ({d['rejected']}) "
                        f"+ errors ({d['errors']}) = {d['kept'] + d['rejected'] + d['errors']}")
    read = stats["read"]
    if read["records"] != read["documents"] + read["errors"]:
        problems.append(f"read: records ({read['records']}) != documents ({read['documents']}) "
                        f"+ errors ({read['errors']})")
    written = {"kept": counters.get("output.kept_written", 0), "rejected": counters.get("output.rejected", 0),
               "errors": counters.get("output.errors", 0)}
    if written["rejected"] != d["rejected"]:
        problems.append(f"rejected records written ({written['rejected']}) != stage drops ({d['rejected']})")
    if written["errors"] != d["errors"]:
        problems.append(f"error records written ({written['errors']}) != read errors ({d['errors']})")
    previous, previous_kept = "read", read["documents"]
    for stage in STAGE_ORDER[1:]:
        sec = stats["stages"].get(stage)
        if sec is None:
            continue
        if sec["in"] != previous_kept:
            problems.append(f"{stage}: in ({sec['in']}) != {previous} output ({previous_kept})")
        if stage != "tokenize":
            if sec["in"] != sec["kept"] + sec["dropped"]:
                problems.append(f"{stage}: in ({sec['in']}) != kept ({sec['kept']}) + dropped ({sec['dropped']})")
            previous, previous_kept = stage, sec["kept"]
    if previous_kept != written["kept"]:
        problems.append(f"kept records written ({written['kept']}) != {previous} output ({previous_kept})")
    return {
        "ok": not problems,
        "rule": "in == kept + rejected + errors",
        "in": d["in"], "kept": d["kept"], "rejected": d["rejected"], "errors": d["errors"],
        "cross_check": {"ok": not problems, "written": written},
        "problems": problems,
    }


def load_stats(directory: str) -> dict[str, Any]:
    """Parsed ``DIR/stats.json`` of a finished run; a clear error for unfinished/failed runs."""
    from apache_beam.io.filesystems import FileSystems

    path = FileSystems.join(directory, "stats.json")
    if not FileSystems.exists(path):
        failed = FileSystems.join(directory, "_FAILED.json")
        if FileSystems.exists(failed):
            with FileSystems.open(failed) as fh:
                info = json.loads(fh.read().decode("utf-8"))
            raise StatsError(f"{directory}: the run failed: {info.get('error')}")
        if FileSystems.exists(FileSystems.join(directory, "_polyko_tmp")):
            raise StatsError(f"{directory}: a run is in progress there or it was interrupted (no stats.json)")
        raise StatsError(f"{directory}: no stats.json (not a polyko run directory)")
    with FileSystems.open(path) as fh:
        return json.loads(fh.read().decode("utf-8"))
