"""Step-Audio-R1.1 served by vLLM: the engine (``engine``), the request body as StepFun's
own client builds it (``body``), the SSE reply as it streams (``stream``) and the model's
facts, token arithmetic and reply format (``wire``)."""
