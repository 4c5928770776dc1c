"""Reading and validating preference data (PREFS.csv / DataFrames) and writing utilities (UTILS.csv).

Preference data has one row per (possibly repeated) pair with columns ``item_a,item_b,wins_a,wins_b``;
counts may be fractional (soft labels from K samples or from answer-token probabilities).

Handling of awkward rows, chosen so that nothing is silently wrong:

- unknown or missing columns, non-numeric/NaN/infinite counts, negative counts, empty item ids and a pair
  of an item with itself are errors naming the file, the 1-based CSV line (header = line 1) and the column;
- rows with ``wins_a + wins_b == 0`` carry no information (e.g. every answer was unparseable): they are
  dropped with a ``UserWarning`` listing their lines. An item seen only in such rows is then unconnected,
  which the connectivity check reports.
- a disconnected comparison graph makes utilities of different components incomparable: ``check_connected``
  refuses it, naming the components' sizes and a few members (callers may fit each component instead).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from valuelab.errors import InputError

COLUMNS = ("item_a", "item_b", "wins_a", "wins_b")
DATAFRAME = "<DataFrame>"


@dataclass(frozen=True)
class Comparisons:
    """Preferences aggregated per unordered pair; items are indexed in sorted order of their ids.

    Edges are oriented ``a < b``. The per-row arrays keep each input row's edge and oriented counts so
    that the bootstrap can resample rows (the unit the data was collected in).
    """

    items: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    wins_a: np.ndarray
    wins_b: np.ndarray
    row_edge: np.ndarray
    row_wins_a: np.ndarray
    row_wins_b: np.ndarray
    source: str = DATAFRAME

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def n_edges(self) -> int:
        return len(self.a)

    def subset_edges(self, keep: np.ndarray) -> Comparisons:
        """The same items restricted to the edges where ``keep`` (bool, per edge) is true."""
        new_index = np.cumsum(keep) - 1
        rows = keep[self.row_edge]
        return Comparisons(self.items, self.a[keep], self.b[keep], self.wins_a[keep], self.wins_b[keep],
                           new_index[self.row_edge[rows]], self.row_wins_a[rows], self.row_wins_b[rows],
                           self.source)

    def subset_items(self, members: np.ndarray) -> Comparisons:
        """The sub-problem on ``members`` (item indices), keeping only edges inside it."""
        members = np.sort(members)
        remap = np.full(self.n_items, -1)
        remap[members] = np.arange(len(members))
        keep = (remap[self.a] >= 0) & (remap[self.b] >= 0)
        sub = self.subset_edges(keep)
        return Comparisons(tuple(self.items[i] for i in members), remap[sub.a], remap[sub.b], sub.wins_a,
                           sub.wins_b, sub.row_edge, sub.row_wins_a, sub.row_wins_b, self.source)

    def to_frame(self) -> pd.DataFrame:
        items = np.asarray(self.items, dtype=object)
        return pd.DataFrame({"item_a": items[self.a], "item_b": items[self.b],
                             "wins_a": self.wins_a, "wins_b": self.wins_b})


def read_prefs(path: str | Path) -> Comparisons:
    """Read and validate PREFS.csv (see the module docstring for what is refused)."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise InputError("file not found", file=str(path)) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"not a readable CSV ({exc})", file=str(path)) from None
    return to_comparisons(frame, source=str(path))


def to_comparisons(frame: pd.DataFrame, source: str = DATAFRAME) -> Comparisons:
    """Validate a preference frame and aggregate it per unordered pair."""
    in_csv = source != DATAFRAME

    def where(pos: int) -> dict:
        # CSV line numbers are 1-based with the header on line 1; frames are named by row position.
        return {"file": source, "line": pos + 2} if in_csv else {"file": f"{source} row {pos}"}

    unknown = [c for c in frame.columns if c not in COLUMNS]
    if unknown:
        raise InputError(f"unknown column {unknown[0]!r}; expected exactly {', '.join(COLUMNS)}",
                         file=source, line=1 if in_csv else None, field=str(unknown[0]))
    for col in COLUMNS:
        if col not in frame.columns:
            raise InputError(f"missing column {col!r}; expected {', '.join(COLUMNS)}",
                             file=source, line=1 if in_csv else None, field=col)
    if len(frame) == 0:
        raise InputError("no preference rows", file=source)

    item_cols = {}
    for col in ("item_a", "item_b"):
        values = frame[col]
        missing = values.isna() | (values.astype(str).str.strip() == "")
        if missing.any():
            raise InputError("missing item id", **where(int(np.argmax(missing.to_numpy()))), field=col)
        item_cols[col] = values.astype(str).str.strip().to_numpy()
    counts = {}
    for col in ("wins_a", "wins_b"):
        values = pd.to_numeric(frame[col], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            pos = int(np.argmax(bad))
            raise InputError(f"count {frame[col].iloc[pos]!r} is not a finite number", **where(pos),
                             field=col)
        if (values < 0).any():
            pos = int(np.argmax(values < 0))
            raise InputError(f"negative count {values[pos]:g}", **where(pos), field=col)
        counts[col] = values
    same = item_cols["item_a"] == item_cols["item_b"]
    if same.any():
        pos = int(np.argmax(same))
        raise InputError(f"item {item_cols['item_a'][pos]!r} is compared with itself", **where(pos),
                         field="item_b")

    items = tuple(sorted(set(item_cols["item_a"]) | set(item_cols["item_b"])))
    zero = counts["wins_a"] + counts["wins_b"] == 0
    if zero.any():
        lines = np.flatnonzero(zero) + (2 if in_csv else 0)
        shown = ", ".join(map(str, lines[:5])) + (", ..." if len(lines) > 5 else "")
        label = "lines" if in_csv else "rows"
        warnings.warn(f"{source}: dropped {len(lines)} rows with zero counts ({label} {shown})", stacklevel=2)
        if zero.all():
            raise InputError("every row has zero counts", file=source)
    keep = ~zero
    index = {item: i for i, item in enumerate(items)}
    ia = np.fromiter((index[x] for x in item_cols["item_a"][keep]), dtype=np.int64)
    ib = np.fromiter((index[x] for x in item_cols["item_b"][keep]), dtype=np.int64)
    return aggregate(items, ia, ib, counts["wins_a"][keep], counts["wins_b"][keep], source)


def aggregate(items: tuple[str, ...], ia: np.ndarray, ib: np.ndarray, wa: np.ndarray, wb: np.ndarray,
              source: str = DATAFRAME) -> Comparisons:
    """Orient rows as ``a < b`` (swapping counts) and sum them per pair."""
    flip = ia > ib
    lo, hi = np.where(flip, ib, ia), np.where(flip, ia, ib)
    row_wa, row_wb = np.where(flip, wb, wa), np.where(flip, wa, wb)
    keys, row_edge = np.unique(lo * len(items) + hi, return_inverse=True)
    n_edges = len(keys)
    return Comparisons(items, keys // len(items), keys % len(items),
                       np.bincount(row_edge, row_wa, n_edges), np.bincount(row_edge, row_wb, n_edges),
                       row_edge, row_wa.astype(float), row_wb.astype(float), source)


def components(comp: Comparisons) -> list[np.ndarray]:
    """Connected components of the comparison graph (item indices), largest first."""
    n = comp.n_items
    graph = coo_matrix((np.ones(comp.n_edges), (comp.a, comp.b)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    groups = [np.flatnonzero(labels == k) for k in range(count)]
    return sorted(groups, key=len, reverse=True)


def check_connected(comp: Comparisons) -> None:
    """Refuse a disconnected comparison graph: utilities across components are not comparable."""
    groups = components(comp)
    if len(groups) > 1:
        described = "; ".join(
            f"{len(g)} items ({', '.join(comp.items[i] for i in g[:3])}{', ...' if len(g) > 3 else ''})"
            for g in groups[:5])
        more = f" and {len(groups) - 5} more" if len(groups) > 5 else ""
        raise InputError(f"the comparison graph has {len(groups)} disconnected components: {described}"
                         f"{more}. Add comparisons that link them, or fit each component separately",
                         file=comp.source)


def write_utils(frame: pd.DataFrame, path: str | Path) -> None:
    """Write UTILS.csv (``item,mean,variance`` and optional interval columns)."""
    frame.to_csv(path, index=False, float_format="%.10g")
