"""BENCHMARKS.md: a run rewrites its own section in place and keeps everything else."""

from bench.harness import HEADER, Context, Result, render_section, scale_database_url, write_report


def _ctx(scale: str) -> Context:
    return Context(
        scale=scale, customers=10, database_url="postgres://u@h/db", in_ci=False, reseed=False
    )


def _section(benchmark: str, scale: str, value: float) -> dict[str, str]:
    result = Result(
        name="load time",
        value=value,
        unit="s",
        baseline_name="bare COPY",
        baseline_value=2.0,
        target="< 15 min",
        passed=None,
    )
    return {f"{benchmark}:{scale}": render_section(benchmark, _ctx(scale), [result], "2 cores")}


def test_a_run_replaces_its_own_section_and_keeps_the_others(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    order = {"seed": 0, "status": 10}
    write_report(_section("status", "full", 7.0), order, report)
    write_report(_section("seed", "ci", 3.0), order, report)
    write_report(_section("seed", "full", 5.0), order, report)

    write_report(_section("seed", "ci", 4.0), order, report)

    text = report.read_text()
    assert text.startswith(HEADER)
    assert text.count("<!-- bench:seed:ci -->") == 1
    assert "| load time | 4.00 s | bare COPY | 2.00 s | 2.00× |" in text
    assert "3.00 s" not in text
    # Ordered by benchmark (seed before status), then scale (ci before full).
    positions = [
        text.index(f"<!-- bench:{key} -->") for key in ("seed:ci", "seed:full", "status:full")
    ]
    assert positions == sorted(positions)


def test_each_scale_has_its_own_database(monkeypatch):
    monkeypatch.setenv("BENCH_DATABASE_URL", "postgres://bench@db.local:5433/perf")
    assert scale_database_url("full") == "postgres://bench@db.local:5433/perf_full"
    monkeypatch.delenv("BENCH_DATABASE_URL")
    assert scale_database_url("ci").endswith("/pharmacrm_bench_ci")
