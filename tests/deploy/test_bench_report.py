"""``make bench``'s report (egov_testing.bench_report): every figure beside its anchor as a
ratio, with the machine it ran on. Anchors are passed in here: measuring belongs to make bench."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import pytest
from egov_testing.bench_report import GRPC_ANCHOR, Anchor, collect_figures, write_report

REGISTRY_RESULTS = {
    "grpc_sqlite_10000": {
        "documents": 10000,
        "single_registrations_per_s": 335,
        "verified_documents_per_s": 87,
    },
    "proofs_1m_leaves_sqlite": {"inclusion_proof_ms": 0.8},
    "machine": {"cpus": 64, "python": "3.99"},
}
ANCHORS = {GRPC_ANCHOR: Anchor(GRPC_ANCHOR, 1000.0, "1/s", "loopback gRPC round trips")}


def test_grpc_rates_are_set_against_the_grpc_anchor_and_sizes_are_parameters() -> None:
    figures, _ = collect_figures("registry", REGISTRY_RESULTS)
    by_name = {f.name: f for f in figures}
    assert by_name["single_registrations_per_s"].anchor == GRPC_ANCHOR
    assert by_name["documents"].is_parameter
    assert by_name["inclusion_proof_ms"].unit == "ms"
    assert by_name["inclusion_proof_ms"].anchor is None


def test_report_has_each_figure_with_its_anchor_ratio_and_this_machine(tmp_path: Path) -> None:
    (tmp_path / "results-registry.json").write_text(json.dumps(REGISTRY_RESULTS))
    markdown = write_report(tmp_path, anchors=ANCHORS).read_text()
    assert (
        "| registry | grpc_sqlite_10000 | single_registrations_per_s | 335 1/s | "
        f"{GRPC_ANCHOR} | 1,000 1/s | 0.335 |" in markdown
    )
    assert "| inclusion_proof_ms | 0.8 ms | – | – | – |" in markdown
    assert f"{os.cpu_count()} CPUs, Python {platform.python_version()}" in markdown
    report = json.loads((tmp_path / "results.json").read_text())
    assert report["machine"]["cpus"] == os.cpu_count(), "this run's machine, not the file's"
    ratios = {f["name"]: f["ratio"] for f in report["figures"]}
    assert ratios["verified_documents_per_s"] == pytest.approx(0.087)
    assert report["parameters"][0]["name"] == "documents"


def test_a_benchmark_may_name_its_anchor_and_bring_its_value(tmp_path: Path) -> None:
    results = {
        "sign_b_lt": {"documents_per_s": {"value": 12.5, "anchor": "pades_b_b_per_s"}},
        "anchors": {"pades_b_b_per_s": {"value": 50.0, "unit": "1/s"}},
    }
    (tmp_path / "results-signing.json").write_text(json.dumps(results))
    report_md = write_report(tmp_path, anchors={}).read_text()
    assert (
        "| signing | sign_b_lt | documents_per_s | 12.50 1/s | pades_b_b_per_s | 50.00 1/s "
        "| 0.250 |" in report_md
    )


def test_an_anchor_in_other_units_gives_no_ratio(tmp_path: Path) -> None:
    results = {"x": {"latency_ms": {"value": 3.0, "anchor": GRPC_ANCHOR}}}
    (tmp_path / "results-keys.json").write_text(json.dumps(results))
    report = json.loads(
        (write_report(tmp_path, anchors=ANCHORS).parent / "results.json").read_text()
    )
    assert report["figures"][0]["ratio"] is None


def test_a_figure_that_is_not_a_number_is_refused_by_name(tmp_path: Path) -> None:
    (tmp_path / "results-identity.json").write_text(json.dumps({"login": {"rate_per_s": "fast"}}))
    with pytest.raises(ValueError, match=r"identity: login\.rate_per_s"):
        write_report(tmp_path, anchors={})


def test_no_results_means_run_the_benchmarks_first(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the benchmarks first"):
        write_report(tmp_path, anchors={})
