"""``polyko run``: the curation pipeline from input files to kept/rejected/errors/shards/stats.

    polyko run [INPUT ...] --output DIR [--config FILE] [--set section.key=value] [--overwrite]
               [beam options, e.g. --runner DataflowRunner --project P --region R --temp_location gs://…]

With no INPUT it runs on the bundled sample ``data/sample/*.jsonl.gz``.  Everything is checked
before the pipeline starts (config keys and types, input globs, the output directory), outputs
are written under ``DIR/_polyko_tmp/<run_id>/`` and moved into place only after the run finished
and its accounting (documents in = kept + rejected + errors) holds.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Mapping, Optional

import yaml

from pipeline import config as config_mod
from pipeline.stats import STAGE_ORDER, StatsError, build_stats, counters_from_result

LOG = logging.getLogger("polyko.run")
REPO_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_GLOB = str(REPO_ROOT / "data" / "sample" / "*.jsonl.gz")
TMP_DIRNAME = "_polyko_tmp"
FAILED_FILE = "_FAILED.json"
OUTPUT_DIRS = ("kept", "rejected", "errors", "shards")
# Everything a run (or `polyko report` after it) writes: its presence means DIR holds a run, and
# --overwrite deletes exactly these, so no stale file of the previous run survives.
RUN_MARKERS = ("stats.json", FAILED_FILE, TMP_DIRNAME, "config.yaml", "report.html") + OUTPUT_DIRS


class RunError(RuntimeError):
    """A problem found before or after the pipeline ran, with a message for the user."""


# ---------------------------------------------------------------------------------------------
# output directory handling (Beam filesystems: local paths and gs:// alike)


def _fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _list_under(path: str) -> list[str]:
    fs = _fs()
    try:
        return [m.path for m in fs.match([fs.join(path, "**")])[0].metadata_list]
    except Exception:
        return []


def _entry_exists(path: str) -> bool:
    fs = _fs()
    if fs.exists(path):
        return True
    return bool(_list_under(path))


def existing_run_entries(output: str) -> list[str]:
    fs = _fs()
    return [name for name in RUN_MARKERS if _entry_exists(fs.join(output, name))]


def prepare_output(output: str, overwrite: bool) -> None:
    found = existing_run_entries(output)
    if found and not overwrite:
        raise RunError(f"output directory {output} already holds a run ({', '.join(found)}); "
                       "pass --overwrite to replace it, or choose another --output")
    if found:
        fs = _fs()
        for name in found:
            path = fs.join(output, name)
            if fs.exists(path):
                fs.delete([path])
            rest = _list_under(path)
            if rest:
                fs.delete(rest)
    if "://" not in output:
        os.makedirs(output, exist_ok=True)


def _move_tree(src_dir: str, dst_dir: str) -> None:
    """Move every file under ``src_dir`` to the same relative path under ``dst_dir``."""
    fs = _fs()
    src_files = _list_under(src_dir)
    if not src_files:
        return
    prefix = src_dir.rstrip("/") + "/"
    dst_files = [fs.join(dst_dir, p[len(prefix):]) if p.startswith(prefix) else fs.join(dst_dir, os.path.basename(p))
                 for p in src_files]
    if "://" not in dst_dir:
        for d in {os.path.dirname(p) for p in dst_files}:
            os.makedirs(d, exist_ok=True)
    fs.rename(src_files, dst_files)


def _write_text(path: str, text: str) -> None:
    from apache_beam.io.filesystem import CompressionTypes

    with _fs().create(path, mime_type="application/json", compression_type=CompressionTypes.UNCOMPRESSED) as fh:
        fh.write(text.encode("utf-8"))


def _delete_tree(path: str) -> None:
    fs = _fs()
    files = _list_under(path)
    if files:
        fs.delete(files)
    if "://" not in path and os.path.isdir(path):
        import shutil

        shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# the graph


def check_spine_values(cfg: Mapping[str, Any]) -> None:
    """Value checks for the spine's own keys (types are checked by pipeline.config)."""
    if cfg["output"]["kept_format"] not in ("jsonl", "parquet"):
        raise config_mod.ConfigError(f"config key 'output.kept_format': expected jsonl or parquet, "
                                     f"got {cfg['output']['kept_format']!r}")
    if cfg["output"]["num_kept_files"] < 0:
        raise config_mod.ConfigError("config key 'output.num_kept_files': must be >= 0")
    if cfg["input"]["max_document_bytes"] <= 0:
        raise config_mod.ConfigError("config key 'input.max_document_bytes': must be > 0")


def enabled_stages(cfg: Mapping[str, Any]) -> list[str]:
    return [s for s in STAGE_ORDER[1:] if config_mod.enabled(cfg, s)]


def build_pipeline(p, patterns: list[str], work_dir: str, cfg: Mapping[str, Any],
                   n_files: Optional[int] = None) -> dict[str, Any]:
    """Add the whole curation graph to pipeline ``p``; all outputs go under ``work_dir``.

    Returns the named PCollections (for tests; ``rejected`` per stage). Step labels are stable:
    Read, Normalize, LangID, Quality, Dedup, PII, Tokenize, WriteKept, WriteRejected/<Stage>,
    WriteErrors, WriteStats<Stage>.
    """
    import apache_beam as beam
    from apache_beam.io.filesystems import FileSystems

    from pipeline.io import ReadDocuments, WriteJsonl, WriteKeptParquet
    from pipeline.stages import STAGE_LABELS, CountOutput, FilterStage, build_stage_filters

    stages = enabled_stages(cfg)
    # A local runner holds shuffles in memory and never retries a bundle: records wait in staging
    # files, and JSONL outputs are written one file per bundle (pipeline/staging.py, io.py).
    local = _is_local_runner(p)
    read = p | "Read" >> ReadDocuments(patterns, cfg["input"], n_files)
    docs = read["documents"]
    rejected = []
    stage_stats: dict[str, Any] = {}
    for stage in stages:
        label = STAGE_LABELS[stage]
        section = config_mod.section(cfg, stage)
        if stage in ("normalize", "langid", "quality", "pii"):
            result = docs | label >> FilterStage(stage, build_stage_filters(stage, section))
        elif stage == "dedup":
            from pipeline.dedup import Dedup

            # Dedup counts dedup.in/kept/drop.* itself (docs/architecture.md names); the
            # accounting check below verifies them against its neighbours and the writers.
            # On a local runner the documents wait on disk while dedup runs (its shuffles are
            # held in memory); on a distributed runner they are joined by id in its shuffle.
            staging = FileSystems.join(work_dir, "_dedup_staging") if local else None
            result = docs | label >> Dedup(section, staging_dir=staging, local_runner=local)
            if "stats" in result:
                stage_stats["dedup"] = result["stats"]
        else:  # tokenize: consumes the final kept set, drops nothing
            continue
        docs = result["kept"]
        rejected.append((stage, result["rejected"]))

    kept_docs = docs | "CountKept" >> beam.ParDo(CountOutput())
    out_cfg = cfg["output"]
    gz = int(out_cfg["gzip_level"])
    kept_records = kept_docs | "KeptRecords" >> beam.Map(lambda d: d.to_record())
    if out_cfg["kept_format"] == "parquet":
        kept_records | "WriteKept" >> WriteKeptParquet(FileSystems.join(work_dir, "kept"), "output.kept_written",
                                                       out_cfg["num_kept_files"])
    else:
        kept_records | "WriteKept" >> WriteJsonl(FileSystems.join(work_dir, "kept"), "output.kept_written",
                                                 out_cfg["num_kept_files"], bundle_files=local, gzip_level=gz)
    if "tokenize" in stages:
        from pipeline.tokenize import WriteShards

        # WriteShards counts tokenize.in/kept itself; the accounting check compares them.
        staging = FileSystems.join(work_dir, "_tokenize_staging") if local else None
        shard_stats = kept_docs | STAGE_LABELS["tokenize"] >> WriteShards(
            config_mod.section(cfg, "tokenize"), work_dir, staging_dir=staging)
        stage_stats["shards"] = shard_stats
    # One writer per stage, each fused into the step that rejects: a Flatten of every stage's
    # rejections would be a stage of its own, and the local runner would hold all rejected
    # documents in memory until it ran.  Files: rejected/<stage>-part-SSSSS-of-NNNNN.jsonl.gz.
    for stage, pcoll in rejected:
        pcoll | f"WriteRejected/{STAGE_LABELS[stage]}" >> WriteJsonl(
            FileSystems.join(work_dir, "rejected"), "output.rejected", prefix=stage, bundle_files=local,
            gzip_level=gz)
    read["errors"] | "WriteErrors" >> WriteJsonl(FileSystems.join(work_dir, "errors"), "output.errors",
                                                 bundle_files=local, gzip_level=gz)
    for name, pcoll in stage_stats.items():
        # one small dict per stage: written straight from the step that made it
        pcoll | f"WriteStats{name.title()}" >> beam.Map(
            _write_stage_stats, FileSystems.join(work_dir, "_stage_stats", f"{name}.json"))
    return {"documents": read["documents"], "errors": read["errors"], "kept": kept_docs,
            "rejected": dict(rejected), "stage_stats": stage_stats}


# ---------------------------------------------------------------------------------------------
# runner options

LOCAL_RUNNERS = ("FnApiRunner", "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner",
                 "PrismRunner")


def _is_local_runner(p) -> bool:
    from apache_beam.options.pipeline_options import StandardOptions

    runner = p.options.view_as(StandardOptions).runner if p.options else None
    name = runner if isinstance(runner, str) or runner is None else type(runner).__name__
    return name is None or name.split(".")[-1] in LOCAL_RUNNERS


def pipeline_options(beam_args: list[str]):
    """Beam options from the pass-through args; the local default never touches the network.

    Without ``--runner`` we use the FnApiRunner in multi-processing mode with one SDK worker
    process per CPU (docs/benchmarks.md: faster than the in-process single worker on 2 cores).
    Not the DirectRunner: in Beam 2.77 it first tries the Prism runner, which downloads a binary
    from GitHub (and falls back to this same FnApiRunner only after that fails).
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    joined = " ".join(args)
    if "--runner" not in joined:
        args += ["--runner=FnApiRunner"]
        if "--direct_running_mode" not in joined:
            args += ["--direct_running_mode=multi_processing"]
        if "--direct_num_workers" not in joined:
            args += [f"--direct_num_workers={os.cpu_count() or 1}"]
    return PipelineOptions(args)


def _runner_name(options) -> str:
    from apache_beam.options.pipeline_options import StandardOptions

    runner = options.view_as(StandardOptions).runner
    return runner if isinstance(runner, str) else type(runner).__name__


# ---------------------------------------------------------------------------------------------
# progress


class _Progress:
    """A status line with elapsed time while the pipeline runs (workers log documents read)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def __enter__(self):
        if self.enabled:
            self._start = time.monotonic()
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def _loop(self):
        from rich.console import Console

        console = Console(stderr=True)
        with console.status("polyko run: starting") as status:
            while not self._stop.wait(1.0):
                status.update(f"polyko run: running, {time.monotonic() - self._start:.0f} s elapsed")

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)


# ---------------------------------------------------------------------------------------------
# the command


def run(inputs: list[str], output: str, config_file: Optional[str] = None, overrides: list[str] = (),
        overwrite: bool = False, beam_args: list[str] = (), progress: bool = True) -> dict[str, Any]:
    """Run the pipeline; returns the stats dict. Raises RunError / ConfigError / InputError."""
    import apache_beam as beam

    from pipeline.io import check_inputs

    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    cfg = config_mod.load_config(config_file, overrides)       # 1. config, validated
    check_spine_values(cfg)
    patterns = list(inputs) or [SAMPLE_GLOB]
    matched = check_inputs(patterns)                          # 2. every glob matches something
    stages = enabled_stages(cfg)
    fs = _fs()
    run_id = started.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]
    work_dir = fs.join(output, TMP_DIRNAME, run_id)
    options = pipeline_options(list(beam_args))
    # 3. build the whole graph before touching the output: stage modules are imported and their
    # filters built from the config here, so a missing module or a bad value fails now.
    p = beam.Pipeline(options=options)
    try:
        build_pipeline(p, patterns, work_dir, cfg, n_files=len(set(matched)))
    except (config_mod.ConfigError, RunError):
        raise
    except ImportError as exc:
        raise RunError(f"an enabled stage cannot be imported ({exc}); disable it with "
                       "--set <stage>.enabled=false") from exc
    except Exception as exc:
        raise RunError(f"building the pipeline failed: {type(exc).__name__}: {exc}") from exc
    prepare_output(output, overwrite)                         # 4. never mix two runs
    run_info = {
        "run_id": run_id,
        "started_at": started.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "polyko_version": _version(),
        "runner": _runner_name(options),
        "inputs": patterns,
        "input_files": len(matched),
    }
    try:
        _write_text(fs.join(work_dir, "config.yaml"), yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False))
        with _Progress(progress):
            result = p.run()
            result.wait_until_finish()
        counters = counters_from_result(result)
        stage_stats = _read_stage_stats(work_dir)
        finished = dt.datetime.now(dt.timezone.utc)
        run_info |= {"finished_at": finished.isoformat(timespec="seconds").replace("+00:00", "Z"),
                     "elapsed_s": round(time.monotonic() - t0, 3)}
        stats = build_stats(counters, stages_enabled=stages, run_info=run_info, stage_stats=stage_stats)
        stats["config"] = cfg
    except BaseException as exc:
        _write_text(fs.join(output, FAILED_FILE), json.dumps(
            {"run_id": run_id, "error": f"{type(exc).__name__}: {exc}", "work_dir": work_dir}, indent=2))
        raise
    if not stats["accounting"]["ok"]:
        _write_text(fs.join(output, FAILED_FILE), json.dumps(
            {"run_id": run_id, "error": "accounting mismatch: " + "; ".join(stats["accounting"]["problems"]),
             "work_dir": work_dir, "stats": stats}, indent=2, ensure_ascii=False))
        raise RunError("accounting check failed (documents in != kept + rejected + errors): "
                       + "; ".join(stats["accounting"]["problems"]) + f"; outputs left in {work_dir}")
    # finalise: move outputs into place, stats.json last, then drop the temp folder
    for name in OUTPUT_DIRS:
        _move_tree(fs.join(work_dir, name), fs.join(output, name))
    _move_tree_file(fs.join(work_dir, "config.yaml"), fs.join(output, "config.yaml"))
    _write_text(fs.join(output, "stats.json"), json.dumps(stats, indent=2, ensure_ascii=False))
    _delete_tree(fs.join(output, TMP_DIRNAME))
    if cfg["output"]["write_report"]:
        # After stats.json: the report reads the finished run like `polyko report DIR` would.
        from pipeline.report import write_report

        stats["report"] = write_report(output)
    return stats


def _move_tree_file(src: str, dst: str) -> None:
    _fs().rename([src], [dst])


def _write_stage_stats(stats: dict, path: str) -> None:
    _write_text(path, json.dumps(stats, ensure_ascii=False, default=str))


def _read_stage_stats(work_dir: str) -> dict[str, Any]:
    fs = _fs()
    out: dict[str, Any] = {}
    for path in _list_under(fs.join(work_dir, "_stage_stats")):
        name = os.path.basename(path).split(".", 1)[0]
        with fs.open(path) as fh:
            value = json.loads(fh.read().decode("utf-8"))
        if isinstance(value, dict):
            out.setdefault(name, {}).update(value)
    return out


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("polyko")
    except Exception:
        return "unknown"


def _summary(stats: Mapping[str, Any], output: str) -> str:
    d = stats["documents"]
    lines = [f"polyko run finished in {stats.get('elapsed_s', 0):.1f} s on {stats.get('runner')}: "
             f"{d['in']:,} in, {d['kept']:,} kept, {d['rejected']:,} rejected, {d['errors']:,} errors "
             f"(accounting ok) -> {output}"]
    for stage, sec in stats["stages"].items():
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(sec["drop"].items(), key=lambda kv: -kv[1]))
        lines.append(f"  {stage:<9} in {sec['in']:>10,}  kept {sec['kept']:>10,}" + (f"  ({reasons})" if reasons else ""))
    return "\n".join(lines)


class _WorkerLogFilter(logging.Filter):
    """The local runner forwards every worker warning ("No semi_persistent_directory…") to the
    console as a protobuf dump. Keep only polyko's progress lines (re-printed plainly) and errors."""

    def filter(self, record: logging.LogRecord) -> bool:
        import re

        msg = record.getMessage()
        if "polyko progress" in msg:
            m = re.search(r'message: "(polyko progress[^"]*)"', msg)
            record.msg, record.args = (m.group(1) if m else msg), ()
            record.name, record.levelname = "polyko", "INFO"
            return True
        return record.levelno >= logging.ERROR


def _configure_logging() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("apache_beam.runners.portability.local_job_service",
                 "apache_beam.runners.worker.sdk_worker"):
        logging.getLogger(name).addFilter(_WorkerLogFilter())


def _main(args: argparse.Namespace) -> int:
    from pipeline.io import InputError

    _configure_logging()
    try:
        stats = run(args.inputs, args.output, args.config, args.set or [], args.overwrite,
                    getattr(args, "beam_args", []) or [], progress=not args.quiet)
    except (config_mod.ConfigError, InputError, RunError, StatsError) as exc:
        print(f"polyko run: error: {exc}", file=sys.stderr)
        return 2
    print(_summary(stats, args.output))
    if stats.get("report"):
        print(f"report: {stats['report']}")
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run the curation pipeline",
        description="Run the curation pipeline: input files to kept/rejected/errors/shards/stats.json.",
        epilog="Unknown options are passed to Apache Beam as pipeline options.")
    parser.add_argument("inputs", nargs="*", metavar="INPUT",
                        help="input files or globs (.jsonl/.json[.gz|.zst], .parquet, .txt[.gz], .warc[.gz], "
                             ".wet.gz); default: the bundled sample data/sample/*.jsonl.gz")
    parser.add_argument("--output", "-o", required=True, metavar="DIR", help="run directory (local or gs://)")
    parser.add_argument("--config", "-c", metavar="FILE", help="YAML overriding configs/default.yaml")
    parser.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE",
                        help="override one config key (repeatable), e.g. --set dedup.enabled=false")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --output")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    parser.set_defaults(func=_main, accepts_beam_options=True)
