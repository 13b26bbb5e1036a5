"""Helpers shared by several test modules, split by topic; pytest's fixtures stay in ``tests/conftest.py``.

Test modules import from here, never from one another (nor plain functions from conftest.py). The
modules for optional extras (``server``: fastapi; ``video``: av and cv2) skip the importing test
module when the extra is missing, so import them after that module's own ``pytest.importorskip``.
"""
