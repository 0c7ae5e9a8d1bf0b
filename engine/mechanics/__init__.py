"""Generic liquidation mechanics: margin, trigger, prices, steps, fills, fees, statements.

Every number and formula comes from the policy; this package knows only the shape of a
liquidation.
"""
