"""The demo bank: a seeded simulator of a brokerage's customers, products and behaviour.

``generate_demo_bank`` returns the seven contract tables plus the truth planted in them;
``write_demo_bank`` writes them as a dataset directory (DATA_CONTRACT.md) with ``truth/``.
"""

from features.demo_bank.catalog import DEMO_AS_OF
from features.demo_bank.generate import DemoBank, generate_demo_bank
from features.demo_bank.io import write_demo_bank

__all__ = ["DEMO_AS_OF", "DemoBank", "generate_demo_bank", "write_demo_bank"]
