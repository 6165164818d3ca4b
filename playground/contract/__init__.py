"""The API's contract: one typed description of every request and response, per dialect, and one error vocabulary.

Each request is a pydantic model (``openai.py``, ``tgi.py``) whose fields read their ranges from
``inference.types.RANGES``; validating a body is ``parse(Model, body)``, which turns any refusal into a
``Problem`` from the one vocabulary in ``errors.py``. The OpenAPI document, the /api/ page and each model card's
API tab are generated from the same models, so none of them can drift from what the server accepts.
No Django here: the HTTP adapters (playground/api) and the sockets both read it.
"""
