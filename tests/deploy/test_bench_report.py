"""``make bench``'s report (egov_testing.bench_report): every figure beside its anchor as a
ratio, with the machine it ran on. Machine anchors are passed in here: measuring them belongs to
``make bench``, never to ``make test``."""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path
from typing import Any

import pytest
from egov_testing.bench_report import (
    GRPC_ANCHOR,
    SIGN_ANCHOR,
    VERIFY_ANCHOR,
    Anchor,
    collect_figures,
    write_report,
)

# Shapes the services' benchmarks write today (tests/bench/).
REGISTRY: dict[str, Any] = {
    "grpc_sqlite_10000": {"documents": 10000, "single_registrations_per_s": 335},
    "proofs_1m_leaves_sqlite": {"inclusion_proof_ms_median": 0.8, "note": "store-level"},
    "machine": {"cpus": 64, "python": "3.99"},
}
KEYS: dict[str, Any] = {
    "sign_hash_per_second": {"pkcs11": {"1_worker": 186.0}},
    "authorize_sign_hash_ms": {"p50": 4.0},
    "calls_per_measurement": 300,
}
SIGNING: dict[str, Any] = {
    "sign_B-B_workers1": {
        "ours_grpc": {"per_second": 26.0, "n": 24},
        "pyhanko_in_process": {"per_second": 20.0, "n": 24},
        "throughput_ratio_ours_over_pyhanko": 1.3,
    }
}
IDENTITY: dict[str, Any] = {
    "grants_per_second_1_process": {"refresh_grpc": 500.0, "refresh_http": 300.0},
    "id_token_verifications_per_second_1_thread": 2000.0,
}
MACHINE = {
    GRPC_ANCHOR: Anchor(GRPC_ANCHOR, 1000.0, "1/s", "loopback gRPC round trips"),
    SIGN_ANCHOR: Anchor(SIGN_ANCHOR, 10000.0, "1/s", "ECDSA signatures"),
    "ecdsa_p256_sign_ms": Anchor("ecdsa_p256_sign_ms", 0.1, "ms", "one ECDSA signature"),
    VERIFY_ANCHOR: Anchor(VERIFY_ANCHOR, 4000.0, "1/s", "ECDSA verifications"),
}


def _report(tmp_path: Path, **services: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    for service, results in services.items():
        (tmp_path / f"results-{service}.json").write_text(json.dumps(results))
    markdown = write_report(tmp_path, anchors=MACHINE).read_text()
    return markdown, json.loads((tmp_path / "results.json").read_text())


def test_units_and_anchors_follow_the_words_of_each_figure() -> None:
    figures = {f.name: f for f in collect_figures("keys", KEYS)[0]}
    assert figures["sign_hash_per_second.pkcs11.1_worker"].unit == "1/s"
    assert figures["sign_hash_per_second.pkcs11.1_worker"].anchor == SIGN_ANCHOR
    assert figures["authorize_sign_hash_ms.p50"].unit == "ms"
    assert figures["authorize_sign_hash_ms.p50"].anchor == "ecdsa_p256_sign_ms"
    assert figures["calls_per_measurement"].is_parameter
    identity = {f.name: f for f in collect_figures("identity", IDENTITY)[0]}
    assert identity["grants_per_second_1_process.refresh_grpc"].anchor == GRPC_ANCHOR
    assert identity["grants_per_second_1_process.refresh_http"].anchor is None
    assert identity["id_token_verifications_per_second_1_thread"].anchor == VERIFY_ANCHOR


def test_report_has_each_figure_with_its_anchor_ratio_and_this_machine(tmp_path: Path) -> None:
    markdown, report = _report(tmp_path, registry=REGISTRY, keys=KEYS)
    assert (
        "| registry | grpc_sqlite_10000.single_registrations_per_s | 335 1/s | "
        f"{GRPC_ANCHOR} | 1,000 1/s | 0.335 |" in markdown
    )
    assert "| keys | sign_hash_per_second.pkcs11.1_worker | 186 1/s | " in markdown
    assert "| 0.0186 |" in markdown
    assert "| proofs_1m_leaves_sqlite.inclusion_proof_ms_median | 0.8 ms | – | – | – |" in markdown
    assert f"{os.cpu_count()} CPUs, Python {platform.python_version()}" in markdown
    assert report["machine"]["cpus"] == os.cpu_count(), "this run's machine, not the file's"
    ratios = {f["name"]: f["ratio"] for f in report["figures"]}
    assert ratios["authorize_sign_hash_ms.p50"] == pytest.approx(40.0)
    assert "grpc_sqlite_10000.documents" in {p["name"] for p in report["parameters"]}


def test_a_baseline_measured_beside_a_figure_is_its_anchor(tmp_path: Path) -> None:
    markdown, report = _report(tmp_path, signing=SIGNING)
    assert (
        "| signing | sign_B-B_workers1.ours_grpc.per_second | 26.00 1/s | "
        "pyhanko_in_process.per_second | 20.00 1/s | 1.3 |" in markdown
    )
    names = {f["name"] for f in report["figures"]}
    assert "sign_B-B_workers1.throughput_ratio_ours_over_pyhanko" not in names, "derived"
    assert "| sign_B-B_workers1.pyhanko_in_process.per_second |" not in markdown, "an anchor"


def test_a_benchmark_may_name_its_anchor_and_bring_its_value(tmp_path: Path) -> None:
    results = {
        "sign_b_lt": {"documents_per_s": {"value": 12.5, "anchor": "pades_b_b_per_s"}},
        "anchors": {"pades_b_b_per_s": {"value": 50.0, "unit": "1/s"}},
    }
    markdown, _ = _report(tmp_path, signing=results)
    assert "| sign_b_lt.documents_per_s | 12.50 1/s | pades_b_b_per_s | 50.00 1/s | 0.25 |" in (
        markdown
    )


def test_an_anchor_in_other_units_gives_no_ratio(tmp_path: Path) -> None:
    _, report = _report(tmp_path, keys={"x": {"latency_ms": {"value": 3.0, "anchor": GRPC_ANCHOR}}})
    assert report["figures"][0]["ratio"] is None


def test_no_results_means_run_the_benchmarks_first(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the benchmarks first"):
        write_report(tmp_path, anchors={})


def test_targets_say_when_some_configurations_miss_them(tmp_path: Path) -> None:
    from egov_testing.bench_report import check_targets

    numbers = {
        "registry:grpc_sqlite_10000.single_registrations_per_s": 600.0,
        "registry:grpc_sqlite_10000.batched_registrations_per_s": 6000.0,
        "registry:proofs_1m_leaves_sqlite.inclusion_proof_ms_median": 2.0,
        "signing:sign_B-LTA_workers1.time_ratio_ours_over_pyhanko": 0.9,
        "signing:sign_B-LTA_workers2.time_ratio_ours_over_pyhanko": 1.1,
    }
    rows = {row["what"]: row for row in check_targets(numbers)}
    single = rows["registry: registrations/s, one per call, SQLite"]
    assert (single["best"], single["met"]) == (600.0, "no")
    assert rows["registry: registrations/s, batched, SQLite"]["met"] == "yes"
    assert rows["registry: inclusion proof at 1M leaves, median"]["met"] == "yes"  # lower: better
    lta = rows["signing: B-LTA time, ours over pyHanko in-process (same concurrency)"]
    assert (lta["best"], lta["worst"], lta["met"]) == (0.9, 1.1, "partly")
    assert rows["keys: SignHash calls/s, SoftHSM-wrapped P-256"]["met"] is None  # not measured


def test_a_target_leaves_out_the_figures_it_excludes() -> None:
    from egov_testing.bench_report import check_targets

    numbers = {
        "registry:grpc_sqlite_10000_2_processes.get_document_per_s": 3000.0,
        "registry:grpc_sqlite_10000_2_processes.server_capacity.get_document_per_s": 5100.0,
        "registry:grpc_sqlite_10000.server_capacity.get_document_per_s": 2500.0,
    }
    rows = check_targets(numbers)
    python_clients, capacity = (
        next(
            row
            for row in rows
            if row["what"].startswith("registry: lookups/s") and words in row["what"]
        )
        for words in ("Python clients", "server capacity")
    )
    # The Python clients' row sees only their figure, not the h2load ones under it.
    assert (python_clients["best"], python_clients["configurations"]) == (3000.0, 1)
    # The capacity row counts two processes only (one process uses one core).
    assert (capacity["best"], capacity["configurations"], capacity["met"]) == (5100.0, 1, "yes")


def test_the_readme_part_between_the_markers_is_rewritten_and_nothing_else(tmp_path: Path) -> None:
    from egov_testing.bench_report import README_END, README_START, update_readme

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{README_START}\nold figures\n{README_END}\n\nafter\n")
    machine = {"generated": "2026-11-26T00:00:00+00:00", "cpus": 2, "python": "3.11.7"}
    table = "# Benchmarks\n\nMachine: ...\n\n| a | b |\n|---|---|\n| 1 | 2 |\n"
    assert update_readme(readme, machine, "| target |\n|---|\n| t |\n", table)
    text = readme.read_text()
    assert "old figures" not in text
    assert text.startswith("# x\n\nbefore\n\n" + README_START)
    assert text.endswith(README_END + "\n\nafter\n")
    assert "| t |" in text and "| 1 | 2 |" in text and "2 CPUs" in text
    plain = tmp_path / "OTHER.md"
    plain.write_text("no markers\n")
    assert not update_readme(plain, machine, "", table)
    assert plain.read_text() == "no markers\n"
