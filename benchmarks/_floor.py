"""The floor of benchmarks/serve.py: a run's recommendations.parquet as a dict on bare Starlette
and uvicorn (no policy, no reasons work, no access control). Not a benchmark of its own (the
leading underscore keeps `make bench` from running it).

    python -m benchmarks._floor RUN_DIR PORT
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


def floor_answers(run_dir: Path) -> dict[str, dict]:
    """customer_id -> {"customer_id", "items": [the batch's rows of that customer]}."""
    recs = pd.read_parquet(Path(run_dir) / "recommendations.parquet")
    recs = recs.assign(customer_id=recs["customer_id"].astype(str),
                       reasons=recs["reasons"].map(list))  # fmt: skip
    return {
        customer: {"customer_id": customer, "items": rows.to_dict(orient="records")}
        for customer, rows in recs.groupby("customer_id", sort=False)
    }


def floor_app(answers: dict[str, dict]) -> Starlette:
    """POST /recommend answering from `answers`; GET /readyz."""

    async def recommend(request: Request) -> JSONResponse:
        body = await request.json()
        answer = answers.get(str(body.get("customer_id")))
        if answer is None:
            return JSONResponse({"error": "unknown customer"}, status_code=404)
        return JSONResponse(answer)

    async def readyz(_: Request) -> JSONResponse:
        return JSONResponse({"ready": True})

    return Starlette(
        routes=[Route("/recommend", recommend, methods=["POST"]), Route("/readyz", readyz)]
    )


if __name__ == "__main__":
    app = floor_app(floor_answers(Path(sys.argv[1])))
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="warning", access_log=False)
