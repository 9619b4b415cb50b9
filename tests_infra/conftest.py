"""The infrastructure's own tests (not graded, never shipped): they mirror the packages they test,
test_hw3/ for the provided package and test_autograder/ for the grader and the instructor's verbs.
They share the graded tests' plugin, --impl included:
    pytest tests_infra/ --impl solution
"""
pytest_plugins = ["hw3.pytest_plugin"]
