"""Pure domain core of Prefloop: rankings, consensus, export pairs, agreement.

Standard library and numpy only; nothing here knows about HTTP or SQL.
"""
