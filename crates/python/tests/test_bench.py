"""The Python benchmark runner (``crates/python/benchmarks/peers.py``) runs its protocol end to
end on a small TEXMEX folder."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

# The runner is a script of the repository, not part of the package.
_RUNNER = Path(__file__).resolve().parent.parent / "benchmarks" / "peers.py"
_spec = importlib.util.spec_from_file_location("peers", _RUNNER)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def write_vecs(path: Path, rows: np.ndarray) -> None:
    n, d = rows.shape
    out = np.empty((n, d + 1), dtype=rows.dtype)
    out.view(np.int32)[:, 0] = d
    out[:, 1:] = rows
    out.tofile(path)


def test_the_benchmark_runs_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = np.random.default_rng(3)
    base = rng.random((600, 8), dtype=np.float32)
    queries = rng.random((50, 8), dtype=np.float32)
    truth = np.argsort(((queries[:, None] - base[None]) ** 2).sum(-1), axis=1)[:, :10].astype(np.int32)
    data = tmp_path / "tiny"
    data.mkdir()
    write_vecs(data / "base.fvecs", base)
    write_vecs(data / "query.fvecs", queries)
    write_vecs(data / "groundtruth.ivecs", truth)
    out = tmp_path / "runs.jsonl"
    assert bench.main(["--data", str(data), "--libs", "omendex", "--threads", "1,2", "--reps", "2", "--efc", "64", "--out", str(out)]) == 0
    runs = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["lib"], r["threads"], r["rep"]) for r in runs] == [("omendex", 1, 0), ("omendex", 2, 0), ("omendex", 1, 1), ("omendex", 2, 1)]
    for r in runs:
        assert r["n"] == 600 and r["build_vps"] > 0 and r["recall_at_target"] >= 0.95
        assert set(r["batch_qps_at_target"]) == {"1", "2"}
    table = capsys.readouterr().out
    assert "| tiny | omendex | 1 | 2 |" in table and "| tiny | omendex | 2 | 2 |" in table


def test_bad_arguments_and_missing_files_are_clean_exits(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        bench.main(["--data", str(tmp_path), "--libs", "nope"])
    with pytest.raises(SystemExit, match="base.fvecs"):
        bench.main(["--data", str(tmp_path / "absent"), "--libs", "omendex"])
    with pytest.raises(SystemExit):
        bench.main(["--data", str(tmp_path), "--threads", "0"])
