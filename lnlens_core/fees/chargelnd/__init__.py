"""charge-lnd compatible fee policies: read charge-lnd 0.3.1 files unchanged and decide as it does.

Use::

    policies = load_policy_file(path, lens.strategies)      # ConfigError lists every problem
    evaluator = PolicyEvaluator(policies, lens.strategies)
    env = PolicyEnvironment(node=info, capabilities=backend.capabilities, now=clock.now(), ...)
    decision = evaluator.evaluate(PolicyInputs(channel=..., peer_policy=..., ...), env)

``decision.update`` is the :class:`~lnlens_core.domain.FeeUpdate` to send (None:
keep). docs/charge-lnd.md lists where lnlens deliberately differs from 0.3.1.
"""

from .apply import DesiredPolicy, common_properties, desired_policy, diff_policy
from .evaluator import PolicyDecision, PolicyEvaluator
from .inputs import (
    ActivityStats,
    PolicyEnvironment,
    PolicyInputs,
    activity_by_channel,
    activity_stats,
    chargelnd_balances_msat,
    fee_context,
    funding_fee_share_msat,
)
from .loader import COMPAT_MODES, check_policy_file, load_policy_file
from .matchers import Check, InputsMissing
from .policyset import CheckReport, Policy, PolicySet
from .strategies import STRATEGIES

__all__ = [
    "COMPAT_MODES",
    "ActivityStats",
    "Check",
    "CheckReport",
    "DesiredPolicy",
    "InputsMissing",
    "Policy",
    "PolicyDecision",
    "PolicyEnvironment",
    "PolicyEvaluator",
    "PolicyInputs",
    "PolicySet",
    "STRATEGIES",
    "activity_by_channel",
    "activity_stats",
    "chargelnd_balances_msat",
    "check_policy_file",
    "common_properties",
    "desired_policy",
    "diff_policy",
    "fee_context",
    "funding_fee_share_msat",
    "load_policy_file",
]
