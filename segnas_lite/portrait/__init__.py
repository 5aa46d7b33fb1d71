"""Portrait cut-outs and steady video: refine (guided filter, feather), composite (backgrounds),
smooth (EMA), clips, videoio, evaluate (edge scores) and pipeline (``cut_out``, ``process_video``:
what ``segnas replace-background`` and ``segnas video`` call)."""
