"""SCAYLE Admin API: wire models (:mod:`.models`), clients (:mod:`.client`) and webhooks.

Import what you need from the submodules, e.g. ``from scayle_orderwise.scayle.models import Order``.
"""
