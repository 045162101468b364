"""Missed routing opportunities: from each forward and HTLC failure to ranked, explained actions.

A map of the package, in the order data flows through it:

- :mod:`.monitor`: the single sink every adapter feeds forwards into; stores them and counts them live.
- :mod:`.failures`: why a forward failed, CLN failcodes and LND failure details mapped to one taxonomy.
- :mod:`.flows`: flow statistics per channel direction and per channel pair, over sliding windows.
- :mod:`.params`: the analyzer's tunable parameters.
- :mod:`.analyzer`: flow statistics and a channel snapshot in, ranked opportunities out (pure).
- :mod:`.recommendations`: the rules that say what to do about each opportunity, and why.
- :mod:`.alerts`: conditions an operator should hear about now.
- :mod:`.run`: one analysis run over the store, through the hooks (what the CLI and both adapters call).
- :mod:`.report`: the JSON shape shared by every surface.

Nothing is imported here: each module is imported where it is used.
"""
