"""Review quality from real use: `python -m quality report` and `python -m quality ledger`."""
