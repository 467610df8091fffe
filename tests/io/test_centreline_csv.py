"""Centreline CSV files (angio_deploy.io.centreline_csv)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from angio_deploy.errors import InputError, InputNotFoundError
from angio_deploy.io.centreline_csv import read_centreline_csv, write_centreline_csv


def _centreline(n: int = 100) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.linspace(0.0, 1.0, n)
    pts = np.column_stack([40 * t - 12.3, 5 * np.sin(4 * t), -830.0 + 20 * t])
    pts = pts + rng.normal(scale=1e-4, size=pts.shape)
    radius = 1.6 - 0.4 * t + rng.uniform(0, 1e-3, n)
    ellipse = np.column_stack([radius * 1.1, radius / 1.1, rng.uniform(-np.pi, np.pi, n)])
    return pts, radius, ellipse


def test_header_exact_and_round_trip(tmp_path: Path) -> None:
    pts, radius, _ = _centreline()
    path = write_centreline_csv(tmp_path / "centreline.csv", pts, radius)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "ring,x_mm,y_mm,z_mm,radius_mm"
    assert lines[1].startswith("0,") and lines[-1].startswith("99,")
    assert len(lines) == 101
    cl = read_centreline_csv(path)
    assert len(cl) == 100
    np.testing.assert_array_equal(cl.ring, np.arange(100))
    np.testing.assert_array_equal(cl.points, pts)  # exact
    np.testing.assert_array_equal(cl.radius_mm, radius)
    assert cl.ellipse is None


def test_ellipse_columns_round_trip(tmp_path: Path) -> None:
    pts, radius, ellipse = _centreline(7)
    path = write_centreline_csv(tmp_path / "c.csv", pts, radius, ellipse=ellipse)
    assert path.read_text().splitlines()[0] == "ring,x_mm,y_mm,z_mm,radius_mm,a_mm,b_mm,angle_rad"
    cl = read_centreline_csv(path)
    np.testing.assert_array_equal(cl.ellipse, ellipse)


def test_reader_accepts_bom_crlf_reordered_and_extra_columns(tmp_path: Path, caplog) -> None:
    path = tmp_path / "other.csv"
    path.write_bytes(
        b"\xef\xbb\xbfradius_mm,ring,z_mm,y_mm,x_mm,note\r\n1.5,0,3,2,1,a\r\n\r\n1.25,1,6,5,4,b\r\n"
    )
    cl = read_centreline_csv(path)
    np.testing.assert_array_equal(cl.points, [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(cl.radius_mm, [1.5, 1.25])
    assert "note" in caplog.text


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("ring,x_mm,y_mm,z_mm\n0,1,2,3\n", "radius_mm"),
        ("ring,x_mm,y_mm,z_mm,radius_mm\n0,1,2,3,1\n1,4,oops,6,1\n", "line 3, column y_mm"),
        ("ring,x_mm,y_mm,z_mm,radius_mm\n0,1,2,3,1\n1,4,5,6\n", "line 3, column radius_mm"),
        ("ring,x_mm,y_mm,z_mm,radius_mm\n0,1,2,3,0\n", "line 2, column radius_mm"),
        ("ring,x_mm,y_mm,z_mm,radius_mm\n0,1,2,3,1\n0,1,2,3,1\n", "line 3, column ring"),
        ("ring,x_mm,y_mm,z_mm,radius_mm\n0.5,1,2,3,1\n", "line 2, column ring"),
        ("ring,x_mm,y_mm,z_mm,radius_mm\n0,1,2,inf,1\n", "line 2, column z_mm"),
        ("ring,x_mm,y_mm,z_mm,radius_mm,a_mm\n0,1,2,3,1,1\n", "b_mm"),
    ],
)
def test_errors_name_file_line_and_column(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        read_centreline_csv(path)
    assert str(path) in str(info.value)
    assert info.value.field == field


@pytest.mark.parametrize("text", ["", "ring,x_mm,y_mm,z_mm,radius_mm\n"])
def test_empty_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=r"empty|no data rows"):
        read_centreline_csv(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputNotFoundError):
        read_centreline_csv(tmp_path / "none.csv")


def test_writer_validates_shapes(tmp_path: Path) -> None:
    pts, radius, _ = _centreline(5)
    with pytest.raises(ValueError, match="radius_mm"):
        write_centreline_csv(tmp_path / "c.csv", pts, radius[:4])
    with pytest.raises(ValueError, match="ellipse"):
        write_centreline_csv(tmp_path / "c.csv", pts, radius, ellipse=np.ones((5, 2)))
    assert not (tmp_path / "c.csv").exists()


def test_our_own_uncertainty_column_reads_back_without_a_warning(tmp_path: Path, caplog) -> None:
    from angio_deploy.io.centreline_csv import UNCERTAINTY_COLUMN

    p = write_centreline_csv(
        tmp_path / "c.csv",
        np.zeros((3, 3)),
        np.ones(3),
        extra={UNCERTAINTY_COLUMN: np.array([0.5, 1.0, 2.0]), "note": np.zeros(3)},
    )
    with caplog.at_level("WARNING"):
        c = read_centreline_csv(p)
    assert len(c) == 3
    assert UNCERTAINTY_COLUMN not in caplog.text  # angio-deploy's own column
    assert "'note'" in caplog.text  # anything else is still reported
