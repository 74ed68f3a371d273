"""OrderWise OWAPI: wire models (:mod:`.models`), statuses (:mod:`.statuses`) and clients.

Import what you need from the submodules, e.g.
``from scayle_orderwise.orderwise.models import SalesOrderCreate``.
"""
