"""``polyko stats DIR``: the run's numbers as terminal tables (rich).

Counts, percentages and bytes per stage, reason and source come from ``stats.json``; signal
summaries come from one streaming pass over the stored documents (skip it with ``--no-docs``).
The data model is shared with ``polyko report`` (``pipeline.report.collect``), so both show the
same numbers.
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

from pipeline.report import (RunDirError, RunSummary, _find_histogram, _fmt_num, _human_bytes, _pct, _split_tokens,
                             accounting_line, collect, funnel_rows, pii_type_name, terminal_safe, whatif_lines)


def _titled(title: str):
    """A rich Table whose title never wraps (rich wraps titles to the table's width)."""
    from rich.table import Table

    return Table(title=title, title_justify="left", min_width=len(title) + 1)


def _t(x: Any) -> str:
    return terminal_safe(_fmt_num(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else str(x))


def build_tables(s: RunSummary) -> list[Any]:
    """The renderables printed by ``polyko stats`` (tables and lines), in order."""
    from rich.table import Table
    from rich.text import Text

    out: list[Any] = []
    stats = s.stats
    docs = stats.get("documents") or {}
    byts = stats.get("bytes") or {}
    ok, line = accounting_line(stats)
    out.append(Text(f"run {terminal_safe(stats.get('run_id', ''))} · {terminal_safe(s.run_dir)} · "
                    f"runner {terminal_safe(stats.get('runner', ''))}", style="bold"))
    out.append(Text(f"documents: {docs.get('in', 0):,} in, {docs.get('kept', 0):,} kept "
                    f"({_pct(docs.get('kept', 0), docs.get('in', 0))}); bytes: {_human_bytes(byts.get('in', 0) or 0)} in, "
                    f"{_human_bytes(byts.get('kept', 0) or 0)} kept ({_pct(byts.get('kept', 0), byts.get('in', 0))})"))
    out.append(Text("accounting: " + terminal_safe(line), style="green" if ok else "bold red"))

    t = _titled("Funnel (documents and bytes per stage)")
    for col, right in (("stage", False), ("in", True), ("out", True), ("removed", True), ("removed %", True),
                       ("bytes in", True), ("bytes out", True)):
        t.add_column(col, justify="right" if right else "left")
    for r in funnel_rows(s):
        if not r["enabled"]:
            t.add_row(r["stage"], "disabled", "", "", "", "", "", style="dim")
            continue
        bi, bo = r.get("bytes_in"), r.get("bytes_out")
        t.add_row(r["stage"], _t(r["in"] or 0), _t(r["kept"] or 0), _t(r["dropped"] or 0),
                  _pct(r["dropped"] or 0, r["in"] or 0), _human_bytes(bi) if bi is not None else "–",
                  _human_bytes(bo) if bo is not None else "–")
    out.append(t)

    n_in = docs.get("in", 0)
    stages = stats.get("stages") or {}
    t = _titled("Removals per stage and reason")
    for col in ("stage", "reason", "documents", "% of input", "% of stage input"):
        t.add_column(col, justify="left" if col in ("stage", "reason") else "right")
    for stage, reason, n in s.removal_rows():
        t.add_row(terminal_safe(stage), terminal_safe(reason), _t(n), _pct(n, n_in),
                  _pct(n, (stages.get(stage) or {}).get("in", 0)))
    out.append(t)

    sources = stats.get("sources") or {}
    if sources:
        t = _titled("Per source")
        for col in ("source", "in", "kept", "kept %", "bytes in", "bytes out", "removed by"):
            t.add_column(col, justify="left" if col in ("source", "removed by") else "right")
        for src, d in sorted(sources.items(), key=lambda kv: -kv[1].get("in", 0)):
            drops = [(f"{st}/{r}", n) for st, rs in (d.get("drop") or {}).items() for r, n in rs.items()]
            drops.sort(key=lambda kv: -kv[1])
            t.add_row(terminal_safe(src), _t(d.get("in", 0)), _t(d.get("kept", 0)),
                      _pct(d.get("kept", 0), d.get("in", 0)), _human_bytes(d.get("bytes_in", 0) or 0),
                      _human_bytes(d.get("bytes_out", 0) or 0),
                      terminal_safe(", ".join(f"{k} {n:,}" for k, n in drops)))
        out.append(t)

    if s.signals:
        t = _titled(f"Signals ({s.docs_scanned['kept']:,} kept + {s.docs_scanned['rejected']:,} rejected "
                        "documents)")
        for col in ("signal", "n", "min", "median", "max", "threshold", "kept", "removed here", "elsewhere"):
            t.add_column(col, justify="left" if col in ("signal", "threshold") else "right")
        for name in sorted(s.signals):
            summ = s.signals[name]
            tot = summ.class_totals()
            if summ.is_numeric:
                thr = s.thresholds.get(name)
                t.add_row(terminal_safe(name), _t(summ.linear.n), _t(summ.linear.min),
                          _t(round(summ.linear.quantile(0.5), 4)), _t(summ.linear.max),
                          f"{thr[1].removes_when} {_fmt_num(thr[2])} ({thr[0]})" if thr else "",
                          _t(tot[0]), _t(tot[1]), _t(tot[2]))
            else:
                top = sorted(summ.categories.items(), key=lambda kv: -sum(kv[1]))[:4]
                t.add_row(terminal_safe(name), _t(sum(tot)), "", terminal_safe(
                    ", ".join(f"{k} {sum(c):,}" for k, c in top)), "", "", _t(tot[0]), _t(tot[1]), _t(tot[2]))
        out.append(t)

    if s.stage_enabled("dedup"):
        d = stats.get("dedup") or {}
        t = _titled("Dedup")
        t.add_column("statistic")
        t.add_column("value", justify="right")
        for k, v in d.items():
            if not isinstance(v, (dict, list)):
                t.add_row(terminal_safe(k), _t(v))
        hist = _find_histogram(d)
        if hist:
            pts = sorted(((int(float(k)), int(v)) for k, v in hist[1].items()))
            t.add_row(terminal_safe(hist[0]), terminal_safe(", ".join(f"{k}:{v:,}" for k, v in pts[:20])))
        out.append(t)
        largest = d.get("largest_clusters") or []
        if largest:
            t = _titled("Largest dedup clusters")
            for col in ("size", "survivor", "removed", "survivor text"):
                t.add_column(col, justify="right" if col == "size" else "left")
            for c in largest[:10]:
                t.add_row(_t(c.get("size", "")), terminal_safe(c.get("survivor", "")),
                          terminal_safe(", ".join(f"{r} {n}" for r, n in (c.get("removed") or {}).items())),
                          terminal_safe(" ".join(str(c.get("survivor_excerpt") or "").split())[:80]))
            out.append(t)
    else:
        out.append(Text("dedup: disabled", style="dim"))

    if s.stage_enabled("pii"):
        t = _titled("PII entities by type")
        t.add_column("type")
        t.add_column("count", justify="right")
        counts = s.pii_counts()
        for k, v in sorted(counts.items(), key=lambda kv: -kv[1]):
            t.add_row(terminal_safe(pii_type_name(k)), _t(v))
        if not counts:
            t.add_row("(none found)", "0")
        out.append(t)
        by_src = s.pii_by_source()
        if by_src:
            types = sorted({k for c in by_src.values() for k in c})
            t = _titled("PII entities per source")
            t.add_column("source")
            for ty in types:
                t.add_column(terminal_safe(pii_type_name(ty)), justify="right")
            for src, c in sorted(by_src.items()):
                t.add_row(terminal_safe(src), *[_t(c.get(ty, 0)) for ty in types])
            out.append(t)
    else:
        out.append(Text("pii: disabled", style="dim"))

    m = s.manifest or stats.get("shards") or {}
    if s.stage_enabled("tokenize") and m:
        totals = m.get("totals") or {}
        t = _titled(f"Tokens: {_fmt_num(totals.get('tokens', 0))} in {_fmt_num(totals.get('documents', 0))} "
                        "documents")
        for col in ("by", "name", "documents", "tokens"):
            t.add_column(col, justify="right" if col in ("documents", "tokens") else "left")
        for label, table in (("source", totals.get("per_source") or {}), ("split", totals.get("per_split") or {})):
            for name, v in sorted(table.items()):
                dd, tk = _split_tokens(v)
                t.add_row(label, terminal_safe(name), _t(dd) if dd is not None else "", _t(tk))
        for sh in m.get("shards") or []:
            t.add_row("shard", terminal_safe(sh.get("path", "")), _t(sh.get("documents", 0)), _t(sh.get("tokens", 0)))
        out.append(t)
    elif not s.stage_enabled("tokenize"):
        out.append(Text("tokenize: disabled", style="dim"))
    for line in whatif_lines(s):
        out.append(Text(terminal_safe(line)))
    return out


def _cmd_stats(args: argparse.Namespace) -> int:
    from rich.console import Console

    try:
        s = collect(args.dir, set_items=args.set or [], max_docs=0 if args.no_docs else None,
                    samples_per_reason=1)
    except (RunDirError, ValueError) as exc:
        print(f"polyko stats: {exc}", file=sys.stderr)
        return 2
    console = Console(width=args.width) if args.width else Console()
    for r in build_tables(s):
        console.print(r)
    ok, _ = accounting_line(s.stats)
    return 0 if ok else 1


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("stats", help="print a finished run's statistics as tables",
                              description="Counts and percentages per stage, reason and source, bytes, the "
                                          "accounting line, signal, dedup, PII and token summaries.")
    p.add_argument("dir", help="run directory (the --output of polyko run)")
    p.add_argument("--no-docs", action="store_true",
                   help="skip the pass over kept/ and rejected/ (no signal table; instant on huge runs)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="what-if threshold (as polyko report)")
    p.add_argument("--width", type=int, default=0, help="console width (default: terminal width)")
    p.set_defaults(func=_cmd_stats)
