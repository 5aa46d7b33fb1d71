"""Portrait cut-outs and steady video: refinement, compositing, smoothing, the pipelines."""
