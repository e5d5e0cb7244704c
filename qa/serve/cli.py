"""`qa index | ask | serve | eval`: a thin command line over the library."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from qa import __version__, config
from qa.errors import QAError

DOCS_HELP = (
    f"folder of Markdown summaries (default: the folder the index was built from, else "
    f"{config.DEFAULT_DOCS}; env QA_DOCS)"
)


def _switch(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--switch-docs",
        action="store_true",
        help="let the index follow another --docs folder than the one it was built from, or drop "
        "more than half of its summaries (refused otherwise)",
    )


def _store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=config.DEFAULT_STORE,
        metavar="URL",
        help="keep the index in PostgreSQL + pgvector at this postgresql:// URL instead of the "
        "--index folder (env QA_STORE; `make postgres` starts one)",
    )


def _common(parser: argparse.ArgumentParser, docs_help: str = "") -> None:
    parser.add_argument("--docs", type=Path, default=None, help=docs_help or DOCS_HELP)
    parser.add_argument(
        "--index",
        type=Path,
        default=config.DEFAULT_INDEX,
        help="folder of the index (default: %(default)s, env QA_INDEX)",
    )
    _store(parser)
    parser.add_argument(
        "--model",
        default=config.DEFAULT_MODEL,
        help="sentence-transformers model id (already cached) or local path; default: the "
        "bundled all-MiniLM-L6-v2 (env QA_MODEL)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (got {value})")
    return value


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tag",
        action="append",
        default=[],
        choices=config.CATEGORY_TAGS,
        help="only studies with this tag (repeat for any of several)",
    )
    parser.add_argument(
        "--from", dest="date_from", default="", help="published on or after YYYY, YYYY-MM or YYYY-MM-DD"
    )
    parser.add_argument(
        "--to", dest="date_to", default="", help="published on or before YYYY, YYYY-MM or YYYY-MM-DD"
    )


def _rerank(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rerank",
        choices=config.RERANKERS,
        default="cross-encoder",
        help="rerank the leading studies with the bundled cross-encoder (default), or not (faster)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for all sub-commands."""
    parser = argparse.ArgumentParser(
        prog="qa",
        description="Ask questions of ME/CFS and Long COVID research summaries and get back "
        "the passages that answer them, cited to their studies.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_index_parser, _ask_parser, _serve_parser, _eval_parser):
        add(sub)
    return parser


def _index_parser(sub) -> None:  # noqa: ANN001 (argparse's private subparsers type)
    p = sub.add_parser(
        "index",
        help="build or update the index (only added or changed summaries are embedded)",
        description="Build the index, or update it: summaries are compared by content hash; "
        "only added or changed ones are embedded, removed ones are dropped.",
    )
    _common(p)
    p.add_argument("--rebuild", action="store_true", help="embed everything again from scratch")
    p.add_argument(
        "--compact",
        action="store_true",
        help="fold the small updates (deltas) into one new generation; nothing is embedded again",
    )
    _switch(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _ask_parser(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("ask", help="print the passages that answer a question")
    p.add_argument("question", help="the question, in quotes")
    _common(p, docs_help="if given, first bring the index up to date with this folder of summaries")
    _switch(p)
    p.add_argument(
        "-k", type=_positive, default=config.DEFAULT_K, help="studies to show (default: %(default)s)"
    )
    _filters(p)
    p.add_argument("--mode", choices=config.MODES, default="hybrid", help="retrieval method")
    _rerank(p)
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    p.add_argument(
        "--local",
        action="store_true",
        help="search the index in this process even when a `qa serve` of it is running "
        "(by default a running server answers: much faster)",
    )


def _serve_parser(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "serve",
        help="run the web chat (updates the index first; a new index is built while it serves)",
        description="Bring the index up to date, then serve the chat app. With no index yet, the "
        "app listens at once and builds the index behind the page, which shows its progress.",
    )
    _common(p)
    p.add_argument("--host", default=config.DEFAULT_HOST, help="address to bind (default: %(default)s)")
    p.add_argument("--port", type=int, default=config.DEFAULT_PORT, help="port (default: %(default)s)")
    p.add_argument(
        "--mcp", action="store_true", help="also serve /ask as an MCP tool for AI assistants (gradio[mcp])"
    )
    p.add_argument(
        "--watch", action="store_true", help="update the index whenever a summary is added, edited or removed"
    )
    _switch(p)
    p.add_argument(
        "--allow-rebuild", action="store_true", help="show the Rebuild button to every visitor (operator use)"
    )
    _rerank(p)
    p.add_argument(
        "--no-update",
        action="store_true",
        help="serve the index as it is, without reading the summaries (one of several servers "
        "behind a proxy while `qa index` writes; new generations are picked up all the same)",
    )
    p.add_argument(
        "--concurrency",
        type=_positive,
        default=config.DEFAULT_CONCURRENCY,
        help="questions answered at once; more wait in the queue (default: %(default)s)",
    )
    p.add_argument(
        "--rerank-busy",
        type=int,
        default=config.DEFAULT_RERANK_BUSY,
        metavar="N",
        help="skip the reranker for a question while N others are being searched, so many readers "
        "at once still get answers in seconds; the answer says so (0: always rerank; default: %(default)s)",
    )


def _eval_parser(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "eval",
        help="measure retrieval on a question set or a BEIR benchmark folder",
        description="Run questions through the same search the app uses and report hit@5, top1, "
        "recall@10, mrr@10, ndcg@10 and not-covered flags, overall and per question kind.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--questions", type=Path, help="JSONL question set with graded relevant files")
    source.add_argument(
        "--beir", type=Path, help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/); indexed on first use"
    )
    p.add_argument(
        "--split", choices=("test", "dev"), default="test", help="BEIR qrels split (default: test)"
    )
    p.add_argument("--docs", type=Path, default=None, help="with --questions: " + DOCS_HELP)
    _switch(p)
    p.add_argument(
        "--index",
        type=Path,
        default=None,
        help=f"folder of the index (default: {config.DEFAULT_INDEX}, env QA_INDEX; "
        "with --beir: index-beir/<folder name>)",
    )
    _store(p)
    p.add_argument(
        "--model",
        default=config.DEFAULT_MODEL,
        help="sentence-transformers model id (already cached) or local path; default: the "
        "bundled all-MiniLM-L6-v2 (env QA_MODEL)",
    )
    p.add_argument("--mode", choices=config.MODES, default="hybrid", help="retrieval method")
    _rerank(p)
    p.add_argument(
        "-k", type=_positive, default=10, help="studies retrieved per question (default: %(default)s)"
    )
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar while indexing")


def _tqdm_progress():
    from tqdm import tqdm

    bar: dict[str, tqdm] = {}

    def progress(done: int, total: int, what: str) -> None:
        if "bar" not in bar:
            bar["bar"] = tqdm(total=total, desc=what, unit="passage", file=sys.stderr)
        bar["bar"].update(done - bar["bar"].n)
        if done >= total:
            bar["bar"].close()

    return progress


def _pg(args: argparse.Namespace):  # noqa: ANN202
    """The PostgreSQL store named by --store (or QA_STORE), else None (the --index folder)."""
    from qa.index.postgres import PgStore, is_url

    if not args.store:
        return None
    if not is_url(args.store):
        raise QAError(f"--store must be a postgresql:// URL (got {args.store!r})")
    return PgStore(args.store)


def resolve_docs_arg(args: argparse.Namespace) -> Path:
    """The summaries folder for a command: --docs (or QA_DOCS), else the one the index records."""
    from qa.index.folder import recorded_docs, resolve_docs

    given = args.docs if args.docs is not None else os.environ.get("QA_DOCS")
    switch = args.switch_docs or getattr(args, "rebuild", False)
    store = _pg(args)
    if store is not None:  # the database records its folder; a switch is refused by the update
        with store.snapshot() as conn:
            manifest = store.read_manifest(conn, documents=False) or {}
        if given is None and manifest.get("docs"):
            print(
                f"note: reading summaries from {manifest['docs']}, the folder this index was built from",
                file=sys.stderr,
            )
            return Path(manifest["docs"])
        return Path(given) if given else config.DEFAULT_DOCS
    docs = resolve_docs(args.index, Path(given) if given else None, switch, default=config.DEFAULT_DOCS)
    if given is None and docs == recorded_docs(args.index):
        print(f"note: reading summaries from {docs}, the folder this index was built from", file=sys.stderr)
    return docs


def refresh_index(
    docs: Path,
    index_dir: Path,
    model: str,
    *,
    rebuild: bool = False,
    quiet: bool = False,
    switch: bool = False,
    compact: bool = False,
    store=None,  # noqa: ANN001 (a PgStore: the index in PostgreSQL instead of index_dir)
    load: bool = True,
):
    """Update the index from the summaries (only changed ones are read), report skipped files.

    Returns (index, report, embedder).
    """
    from qa.index.files import MANIFEST
    from qa.index.update import update_folder
    from qa.models.embedding import get_embedder
    from qa.models.light import update_embedder

    # An update loads torch only when many passages are to be embedded: a run with nothing or a
    # few summaries changed took 5.5-7 s, 6.3 s of it importing sentence-transformers. A first
    # build or a rebuild embeds everything, faster with torch from the start.
    exists = store.exists() if store is not None else (Path(index_dir) / MANIFEST).exists()
    fresh = rebuild or not exists
    embedder = get_embedder(model) if fresh else update_embedder(model)
    progress = None if quiet else _tqdm_progress()
    if store is not None:
        from qa.index.postgres import update_postgres

        index, report = update_postgres(
            store, docs, embedder, rebuild=rebuild, switch_docs=switch, progress=progress, load=load
        )
    else:
        index, report = update_folder(
            index_dir,
            docs,
            embedder,
            rebuild=rebuild,
            switch_docs=switch,
            progress=progress,
            compact=compact,
        )
    for problem in report.problems:
        print(f"warning: skipped {problem}", file=sys.stderr)
    for warning in report.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for refused in report.refused:
        print(f"warning: refused {refused}", file=sys.stderr)
    return index, report, embedder


def cmd_index(args: argparse.Namespace) -> int:
    """`qa index`."""
    start = time.perf_counter()
    docs = resolve_docs_arg(args)
    store = _pg(args)
    if store is not None and args.compact:
        print(
            "note: --compact has nothing to fold in PostgreSQL (every update is one transaction)",
            file=sys.stderr,
        )
    index, report, _ = refresh_index(
        docs,
        args.index,
        args.model,
        rebuild=args.rebuild,
        quiet=args.quiet,
        switch=args.switch_docs,
        compact=args.compact,
        store=store,
        load=False,  # two counts are printed: PostgreSQL's passages are not read back for them
    )
    if report.rebuilt_reason and report.rebuilt_reason != "asked to rebuild":
        print(f"note: rebuilt the whole index because {report.rebuilt_reason}", file=sys.stderr)
    for name in report.kept_broken:
        print(f"note: kept the last good version of {name}", file=sys.stderr)
    took = time.perf_counter() - start
    print(f"{report.summary()} in {took:.1f}s")
    where = store.label if store is not None else args.index
    passages = sum(len(entry.get("chunks", ())) for entry in index.documents.values())
    print(f"index: {where} ({len(index.documents)} summaries, {passages} passages)")
    return 0


def _ask_server(args: argparse.Namespace) -> bool:
    """Answer through a running `qa serve` of this index; False when none can (then search here)."""
    if args.local or args.docs is not None or args.mode != "hybrid" or args.model != config.DEFAULT_MODEL:
        return False  # an update, another mode or model: only this process can do that
    from qa.serve import remote

    try:
        store = _pg(args)
        where = store.cache if store is not None else args.index  # a server of a store is known by it
        data, url = remote.ask_any(where, args.question, args.tag, args.date_from, args.date_to, args.k)
    except ValueError as exc:  # the server refused the question (a bad date, say)
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    if data is None:
        return False
    print(f"note: answered by the server at {url}", file=sys.stderr)
    if args.json:
        print(json.dumps(data, ensure_ascii=False, indent=2))
    else:
        from qa.present.answer import answer_to_text
        from qa.present.view import view_from_dict

        print(answer_to_text(view_from_dict(data)))
    return True


def cmd_ask(args: argparse.Namespace) -> int:
    """`qa ask`: a running server answers when there is one, else this process (without torch)."""
    if args.k > 20 and not args.local:
        args.local = True  # the server's API stops at 20 studies
    if _ask_server(args):
        return 0
    from qa.index.store import open_index
    from qa.models.light import query_embedder
    from qa.present.answer import answer_to_dict, answer_to_text
    from qa.present.view import answer_view
    from qa.search.types import SearchSettings, parse_filters
    from qa.serve.service import open_searcher

    try:
        filters = parse_filters(args.tag, args.date_from, args.date_to)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    store = _pg(args)
    if args.docs is not None:
        docs = resolve_docs_arg(args)
        index, _, embedder = refresh_index(
            docs, args.index, args.model, quiet=True, switch=args.switch_docs, store=store
        )
    else:
        embedder = query_embedder(args.model)  # numpy for the bundled model: no torch to import
        if store is not None:
            index = store.load()
            index.check_model(embedder)
        else:
            index = open_index(args.index, embedder)
    searcher = open_searcher(
        index, embedder, SearchSettings(mode=args.mode, rerank=args.rerank), writes=args.docs is not None
    )
    answer = searcher.search(args.question, k=args.k, filters=filters, mode=args.mode)
    from qa.present.highlight import highlight_answer

    highlights = highlight_answer(embedder, answer, index.sentences)
    if args.json:
        print(json.dumps(answer_to_dict(answer, highlights), ensure_ascii=False, indent=2))
    else:
        print(answer_to_text(answer_view(answer, highlights)))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """`qa serve`."""
    from qa.search.types import SearchSettings
    from qa.serve.app import serve
    from qa.serve.service import make_service

    docs = resolve_docs_arg(args)
    if args.switch_docs:  # the service's own update keeps to the recorded folder: switch first
        refresh_index(docs, args.index, args.model, switch=True, store=_pg(args), load=False)
    service = make_service(
        docs,
        args.index,
        args.model,
        progress=_tqdm_progress(),
        settings=SearchSettings(rerank=args.rerank, rerank_busy=max(0, args.rerank_busy)),
        update=not args.no_update,
        background=True,  # a new folder: listen at once and build behind the page
        store=args.store,
    )
    if not service.ready:
        print("index: none yet; building it now (the page shows its progress and answers once it is done)")
    else:
        for problem in service.problems:
            print(f"warning: skipped {problem}", file=sys.stderr)
        index = service.searcher.index
        done = service.last_report.summary() if service.last_report else "served as it is (--no-update)"
        print(f"index: {len(index.documents)} summaries; {done}")
    from qa.models.multilingual import detect_language

    detect_language("warm-up")  # its model loads now (0.4 s), not in the first reader's wait
    print(f"serving on http://{args.host}:{args.port}/ (Ctrl+C to stop)", flush=True)
    serve(
        service,
        host=args.host,
        port=args.port,
        mcp=args.mcp,
        watch=args.watch,
        operator=args.allow_rebuild,
        concurrency=args.concurrency,
    )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """`qa eval`."""
    from qa.evaluation import (
        BEIR_INDEX_ROOT,
        evaluate,
        format_report,
        load_beir,
        load_questions,
        report_to_dict,
    )
    from qa.search.types import SearchSettings
    from qa.serve.service import open_searcher

    if args.beir:
        from qa.corpus.documents import LoadResult
        from qa.index.update import update_index
        from qa.models.embedding import get_embedder

        documents, questions = load_beir(args.beir, args.split)
        index_dir = args.index or BEIR_INDEX_ROOT / args.beir.resolve().name
        embedder = get_embedder(args.model)
        progress = None if args.quiet else _tqdm_progress()
        loaded = LoadResult(tuple(documents), ())
        store = _pg(args)
        if store is not None:
            from qa.index.postgres import update_postgres

            index, _ = update_postgres(store, loaded, embedder, progress=progress)
        else:
            index, _ = update_index(index_dir, loaded, embedder, progress=progress)
    else:
        questions = load_questions(args.questions)
        args.index = index_dir = args.index or config.DEFAULT_INDEX
        docs = resolve_docs_arg(args)
        index, _, embedder = refresh_index(
            docs, index_dir, args.model, quiet=args.quiet, switch=args.switch_docs, store=_pg(args)
        )
        missing = sorted({name for q in questions for name in q.relevant} - set(index.documents))
        if missing:
            print(
                f"warning: {len(missing)} judged file(s) are not in the index, e.g. {missing[0]}; "
                "is --docs the folder the questions were written for?",
                file=sys.stderr,
            )
    # BEIR corpora are English abstracts without a Summary section: no multilingual stage there.
    settings = SearchSettings(mode=args.mode, rerank=args.rerank, multilingual=not args.beir)
    report = evaluate(open_searcher(index, embedder, settings), questions, k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps(report_to_dict(report), ensure_ascii=False, indent=2))
    else:
        print(format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `qa` command."""
    args = build_parser().parse_args(argv)
    handler = {"index": cmd_index, "ask": cmd_ask, "serve": cmd_serve, "eval": cmd_eval}[args.command]
    try:
        return handler(args)
    except QAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
