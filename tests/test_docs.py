"""The README stays true: the quickstart comes first, the configuration reference equals
`Settings`, the benchmark summary is the one in docs/benchmarks.md and follows from the measured
numbers in docs/bench/results.json, and every route and command it names exists."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from playlistgen.config_docs import block, readme_block

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
BENCH_DOC = REPO / "docs" / "benchmarks.md"
RESULTS = REPO / "docs" / "bench" / "results.json"


def _report():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import report
    finally:
        sys.path.remove(str(REPO / "bench"))
    return report


def test_quickstart_is_first_and_exactly_two_commands() -> None:
    first_block = re.search(r"```\n(.*?)```", README, re.S)
    assert first_block is not None
    assert first_block.group(1).split("\n")[:-1] == ["make run", "make test"]
    assert "\n## " not in README[:first_block.start()], "the quickstart must come before any section"


def test_config_reference_matches_settings() -> None:
    assert readme_block(README) == block(), (
        "README's configuration reference drifted from Settings: run `python -m playlistgen.config_docs README.md`")


def test_benchmark_summary_matches_docs_and_results() -> None:
    report = _report()
    doc = BENCH_DOC.read_text(encoding="utf-8")
    in_readme, in_doc = report.summary_block(README), report.summary_block(doc)
    assert in_readme and in_doc, "run `make bench` to write docs/benchmarks.md and the README summary"
    assert in_readme == in_doc, "README's benchmark summary differs from docs/benchmarks.md: re-run `make bench`"
    results = json.loads(RESULTS.read_text())
    assert report.summary(results) == in_doc, "docs/benchmarks.md does not follow from docs/bench/results.json"
    numbers = re.findall(r"\d[\d,]*(?:\.\d+)?", in_readme)
    assert len(numbers) > 10
    for number in numbers:
        assert number in doc


def test_benchmark_plots_exist() -> None:
    doc = BENCH_DOC.read_text(encoding="utf-8")
    images = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", doc)
    assert images
    for image in images:
        assert (BENCH_DOC.parent / image).exists(), image


def _readme_routes() -> set[tuple[str, str]]:
    found = set()
    for method, path in re.findall(r"`(GET|POST|DELETE) (/[^`\s?\[]*)", README):
        found.add((method, path))
    for path in re.findall(r"`(/api/v1/[^`\s?\[]*)`", README):
        found.add(("GET", path))
    for line in README.splitlines():
        for path in re.findall(r"http://127\.0\.0\.1:8500(/[^\s'\"?`<>]*)", line):
            method = "POST" if "-X POST" in line or " -F " in line else "GET"
            found.add((method, path.rstrip(">")))
    return {(m, p.replace("<id>", "1")) for m, p in found if p and "*" not in p}


def test_readme_routes_exist(app) -> None:  # type: ignore[no-untyped-def]
    from werkzeug.exceptions import MethodNotAllowed, NotFound

    adapter = app.api.url_map.bind("localhost")
    routes = _readme_routes()
    assert len(routes) > 20
    for method, path in sorted(routes):
        try:
            adapter.match(path, method=method)
        except (NotFound, MethodNotAllowed):
            pytest.fail(f"README names {method} {path}, which the API does not have")


@pytest.mark.parametrize("command", ["serve", "scan", "analyze", "playlist", "db init", "db check", "db backup",
                                     "db vacuum", "db stats", "models install", "models list", "doctor"])
def test_readme_commands_exist(command: str) -> None:
    from click.testing import CliRunner

    from playlistgen.cli import cli

    assert f"playlistgen {command.split()[0]}" in README
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert result.exit_code == 0, f"`playlistgen {command}` does not exist"
