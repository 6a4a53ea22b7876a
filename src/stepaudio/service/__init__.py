"""What every face shares: one admission counter, the metrics, one request's lifecycle.

The faces (the seed's routes, OpenAI's, chat, the task workers, live sessions)
differ in how a recording arrives and how the answer leaves; between those two ends they
all call ``Lifecycle``: admission → probe → pipeline → metrics → clean-up.
"""

from stepaudio.service.admission import Admission, Ticket
from stepaudio.service.lifecycle import Lifecycle, Pcm, Run, Source
from stepaudio.service.metrics import Metrics

__all__ = ["Admission", "Lifecycle", "Metrics", "Pcm", "Run", "Source", "Ticket"]
