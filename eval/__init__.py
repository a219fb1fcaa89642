"""Offline evaluation of reviews: a corpus of merge requests replayed through the real service.

`python -m eval run` (or `make eval`) loads a corpus (`eval/corpus/` by default: repositories at base
and head plus the findings each MR should get, and clean MRs that should get none), starts the real
service on one machine (Temporal dev server, worker, API, the GitLab stand-in) against a model
endpoint (the scripted model answering the planted findings, or any OpenAI-compatible provider),
opens each MR, waits for its ReviewMR run and scores what was posted (`eval.scoring`).
`python -m eval import-aacr|import-martian` turns public benchmark data into a corpus.
"""
