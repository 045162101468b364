"""Fee policy: the strategy contract, the built-in strategies and the strategy registry."""
