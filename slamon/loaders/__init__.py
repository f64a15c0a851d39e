"""Loaders: slamon.yaml, the inventory, contracts and exclusions → frozen, cross-checked values.

Every rule is checked here, once, with a message naming the file, the key or line and the problem;
`load_fleet` is the one entry point `check`, `run`, `probe` and the billing commands share.
"""
