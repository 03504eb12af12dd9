"""Signed award credentials: Open Badges 3.0 as VC-JWT, the issuer key, status lists, checks.

Read-only over the workflow's records: nothing here changes a state. Suspending or withdrawing an
award (through svqm.workflow) is what flips its bits in the status lists, because the lists are
worked out from the awards' current states whenever they are asked for.
"""
