"""Turn simulation buffers into the seven contract tables (ids as strings, tz-naive timestamps)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.demo_bank import catalog as cat
from features.demo_bank.campaign import CAMPAIGN_J
from features.demo_bank.log import (
    EVENT_NAMES,
    KINDS,
    PROP_CHANNEL,
    PROP_SESSION,
    PROP_VARIANT_A,
    PROP_VARIANT_B,
    TX_TYPES,
)  # fmt: skip

NS_PER_DAY = 86_400 * 10**9


def customer_ids(n: int) -> np.ndarray:
    """C000001, C000002, ... (wider when n needs it)."""
    width = max(6, len(str(n)))
    return np.char.add("C", np.char.zfill(np.arange(1, n + 1).astype(str), width)).astype(object)


def to_timestamps(days: np.ndarray) -> pd.Series:
    """Days since START -> tz-naive datetime64[ns], whole seconds (NaN -> NaT)."""
    days = np.asarray(days, float)
    seconds = np.round(np.nan_to_num(days, nan=0.0, posinf=0.0) * 86_400).astype(np.int64)
    stamps = (cat.START.value + seconds * 10**9).astype("datetime64[ns]")
    return pd.Series(
        np.where(np.isfinite(days), stamps, np.datetime64("NaT")), dtype="datetime64[ns]"
    )


def take_arrow(vocab: np.ndarray, codes: np.ndarray) -> pa.Array:
    """Arrow string array from integer codes into ``vocab`` (-1 = null)."""
    codes = np.asarray(codes, dtype=np.int64)
    return pa.array(list(vocab), pa.string()).take(pa.array(codes, mask=codes < 0))


def take_strings(vocab: np.ndarray, codes: np.ndarray) -> pd.Series:
    """Arrow-backed string column from integer codes (-1 = null)."""
    return pd.Series(take_arrow(vocab, codes).to_pandas())


def build_customers(latent: pd.DataFrame, ids: np.ndarray, kyc: np.ndarray) -> pd.DataFrame:
    """The customers table."""
    risk = latent["risk_level"].to_numpy()
    return pd.DataFrame(
        {
            "customer_id": pd.Series(ids, dtype="str"),
            "signup_at": to_timestamps(latent["signup_t"].to_numpy()),
            "birth_year": pd.array(latent["birth_year"].to_numpy(), dtype="Int64"),
            "gender": pd.Series(latent["gender"].to_numpy(), dtype="str"),
            "occupation": pd.Series(latent["occupation"].to_numpy(), dtype="str"),
            "income_band": pd.array(latent["income_band"].to_numpy(), dtype="Int64"),
            "city_tier": pd.array(latent["city_tier"].to_numpy(), dtype="Int64"),
            "channel": pd.Series(latent["channel"].to_numpy(), dtype="str"),
            "risk_level": pd.array(np.where(risk > 0, risk, np.nan), dtype="Int64"),
            "kyc_verified": kyc.astype(bool),
            "marketing_opt_out": latent["marketing_opt_out"].to_numpy().astype(bool),
        }
    )


def build_products() -> pd.DataFrame:
    """The products table."""
    f = cat.PRODUCT_FRAME
    out = f[["product_id", "name", "category"]].astype("str")
    out["risk_level"] = pd.array(f["risk_level"], dtype="Int64")
    out["min_amount"] = f["min_amount"].astype(float)
    out["is_active"] = f["is_active"].astype(bool)
    out["qualified_only"] = f["qualified_only"].astype(bool)
    return out


def _order(c: np.ndarray, t: np.ndarray) -> np.ndarray:
    return np.lexsort((c, t))


def build_events(cols: dict, ids: np.ndarray, channel_codes: np.ndarray) -> pd.DataFrame:
    """The events table, ordered by time."""
    o = _order(cols["c"], cols["t"])
    c, prop, value = cols["c"][o], cols["prop"][o], cols["prop_value"][o]
    return pd.DataFrame(
        {
            "customer_id": take_strings(ids, c),
            "ts": to_timestamps(cols["t"][o]),
            "event": take_strings(EVENT_NAMES, cols["event"][o]),
            "page": take_strings(cat.PAGES, cols["page"][o]),
            "product_id": take_strings(cat.PRODUCT_IDS, cols["product"][o]),
            "properties": _properties(prop, value, channel_codes[c]),
        }
    )


def _properties(prop: np.ndarray, value: np.ndarray, channel: np.ndarray) -> pd.Series:
    """JSON object text per event code (null when there is nothing to say)."""
    sid = pa.array(np.where(prop == PROP_SESSION, value, 0)).cast(pa.string())
    session = pc.binary_join_element_wise('{"session_id": "S', sid, '"}', "")
    chan = pc.binary_join_element_wise('{"channel": "', take_arrow(cat.CHANNELS, channel), '"}', "")
    out = pc.if_else(pa.array(prop == PROP_SESSION), session, pa.nulls(len(prop), pa.string()))
    out = pc.if_else(pa.array(prop == PROP_CHANNEL), chan, out)
    out = pc.if_else(
        pa.array(prop == PROP_VARIANT_A), '{"variant": "A", "experiment": "signup_ab_2025"}', out
    )
    out = pc.if_else(
        pa.array(prop == PROP_VARIANT_B), '{"variant": "B", "experiment": "signup_ab_2025"}', out
    )
    return pd.Series(pa.chunked_array([out]).to_pandas())


def build_transactions(cols: dict, ids: np.ndarray) -> pd.DataFrame:
    """The transactions table, ordered by time."""
    o = _order(cols["c"], cols["t"])
    return pd.DataFrame(
        {
            "customer_id": take_strings(ids, cols["c"][o]),
            "product_id": take_strings(cat.PRODUCT_IDS, cols["product"][o]),
            "ts": to_timestamps(cols["t"][o]),
            "type": take_strings(TX_TYPES, cols["type"][o]),
            "amount": cols["amount"][o].astype(float),
        }
    )


def build_interactions(cols: dict, ids: np.ndarray) -> pd.DataFrame:
    """The interactions table, ordered by time."""
    o = _order(cols["c"], cols["t"])
    return pd.DataFrame(
        {
            "customer_id": take_strings(ids, cols["c"][o]),
            "ts": to_timestamps(cols["t"][o]),
            "kind": take_strings(KINDS, cols["kind"][o]),
            "score": cols["score"][o].astype(float),
        }
    )


def build_balances(cols: dict, ids: np.ndarray) -> pd.DataFrame:
    """Month-end balances (date = last day of the month)."""
    o = np.lexsort((cols["t"], cols["c"]))
    return pd.DataFrame(
        {
            "customer_id": take_strings(ids, cols["c"][o]),
            "date": to_timestamps(np.floor(cols["t"][o])),
            "total_assets": cols["total_assets"][o].astype(float),
        }
    )


def build_campaigns(campaign: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    """The campaigns table (one row per customer the push was addressed to)."""
    n = len(campaign)
    return pd.DataFrame(
        {
            "campaign_id": pd.Series([cat.CAMPAIGN_ID] * n, dtype="str"),
            "customer_id": take_strings(ids, campaign["c"].to_numpy()),
            "sent_at": to_timestamps(campaign["sent_t"].to_numpy()),
            "channel": pd.Series(["app_push"] * n, dtype="str"),
            "group": pd.Series(campaign["group"].to_numpy(), dtype="str"),
            "product_id": pd.Series([cat.PRODUCT_IDS[CAMPAIGN_J]] * n, dtype="str"),
        }
    )
