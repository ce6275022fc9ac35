"""Row buffers that the monthly simulation appends to, as numpy arrays of codes."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

EVENT_NAMES = np.array([
    "register", "real_name_auth", "bind_card", "invest_success", "login", "page_view",
    "view_product", "click", "share", "stock_view_quote", "stock_trade", "forex_view_rates",
    "forex_copy_follow", "p2p_view_loan", "p2p_invest",
])  # fmt: skip
EV = {name: i for i, name in enumerate(EVENT_NAMES)}
TX_TYPES = np.array(["deposit", "withdraw", "buy", "sell", "income"])
TX = {name: i for i, name in enumerate(TX_TYPES)}
KINDS = np.array(["inquiry", "complaint", "survey", "call", "chat"])
KIND = {name: i for i, name in enumerate(KINDS)}
# properties codes: 0 null, 1 session id, 2 variant A, 3 variant B, 4 acquisition channel
PROP_NONE, PROP_SESSION, PROP_VARIANT_A, PROP_VARIANT_B, PROP_CHANNEL = range(5)

_FIELDS = {
    "events": ("c", "t", "event", "page", "product", "prop", "prop_value"),
    "transactions": ("c", "t", "type", "product", "amount"),
    "interactions": ("c", "t", "kind", "score"),
    "balances": ("c", "t", "total_assets"),
}


_DTYPES = {"t": np.float64, "event": np.int8, "page": np.int8, "product": np.int8, "prop": np.int8,
           "prop_value": np.int32, "type": np.int8, "kind": np.int8, "score": np.float64,
           "amount": np.float64, "total_assets": np.float64}  # fmt: skip


@dataclass
class Log:
    """Append-only column buffers per table; scalars broadcast to the length of ``c``."""

    parts: dict[str, dict[str, list[np.ndarray]]] = field(
        default_factory=lambda: {t: {f: [] for f in fs} for t, fs in _FIELDS.items()}
    )

    def add(self, table: str, c: np.ndarray, **cols) -> None:
        """Append rows to ``table``; missing columns get their null code (-1 or NaN)."""
        n = len(c)
        if n == 0:
            return
        self.parts[table]["c"].append(np.asarray(c, dtype=np.int32))
        for name in _FIELDS[table][1:]:
            default = np.nan if name in ("score", "amount", "total_assets") else -1
            value = cols.get(name, default if name != "prop" else PROP_NONE)
            column = np.broadcast_to(np.asarray(value, dtype=_DTYPES[name]), (n,))
            self.parts[table][name].append(column.copy())

    def columns(self, table: str) -> dict[str, np.ndarray]:
        """The concatenated columns of one table; the buffers are released (call once)."""
        parts = self.parts[table]
        if not parts["c"]:
            return {f: np.array([], dtype=_DTYPES.get(f, np.int32)) for f in _FIELDS[table]}
        out = {}
        for f in list(parts):
            out[f] = np.concatenate(parts[f])
            parts[f] = []
        return out
