"""From a recording and a mode to a result: plan windows, fan out to the engine, merge."""
