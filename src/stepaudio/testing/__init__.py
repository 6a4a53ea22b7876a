"""Test helpers shipped with the package: a faithful stand-in for a Step-Audio server."""

from stepaudio.testing.standin import StandIn, StandInStats

__all__ = ["StandIn", "StandInStats"]
