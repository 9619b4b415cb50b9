"""The graded tests' setup lives in hw3/pytest_plugin.py: the implementation switch (--impl /
$HW3_IMPL), the student-module fixtures and the local score table. Tests run against starter/
unless told otherwise:
    pytest tests/ --impl ~/hw3-mine      # any folder holding cnn.py, contrastive.py, cvae.py, gan.py
"""
pytest_plugins = ["hw3.pytest_plugin"]
