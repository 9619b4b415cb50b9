"""In-process tricks (issue 14): lines that name nothing of this assignment and, put at the top of an
untouched starter file, once earned points by tampering with the test process. Each is a validate
case per problem ("trick" kind): the starter plus the trick must still earn nothing, because the
student's file runs in a worker that holds no test code, no pytest run and no results channel.

    python -m autograder validate --problem gan      # the starter, its variants and these tricks

Every trick guards itself (try/except) as a careful cheater would, so the file still imports.
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Trick:
    name: str
    description: str
    code: str            # put before the starter's text


TRICKS = [
    Trick("patch-callinfo", "pytest's CallInfo.from_call runs a no-op instead of the test",
          "try:\n"
          "    import _pytest.runner as _r\n"
          "    _f = _r.CallInfo.from_call.__func__\n"
          "    _r.CallInfo.from_call = classmethod(lambda c, func, when, reraise=None: _f(c, lambda: None, when, "
          "reraise))\n"
          "except Exception:\n"
          "    pass\n"),
    Trick("patch-runtest", "every pytest Function item's runtest does nothing",
          "try:\n"
          "    import _pytest.python\n"
          "    _pytest.python.Function.runtest = lambda self: None\n"
          "except Exception:\n"
          "    pass\n"),
    Trick("score-by-profile", "sys.setprofile sets __score__ on every test function as it is called",
          "import sys as _s, threading as _t\n"
          "def _p(frame, event, arg):\n"
          "    if frame.f_code.co_name.startswith('test_'):\n"
          "        _g = frame.f_globals.get(frame.f_code.co_name)\n"
          "        if _g is not None:\n"
          "            _g.__dict__['__score__'] = 1e9\n"
          "_s.setprofile(_p)\n"
          "_t.setprofile(_p)\n"),
    Trick("forge-channel", "sends passing reports through any results channel found by gc",
          "import gc as _gc\n"
          "for _o in _gc.get_objects():\n"
          "    if type(_o).__name__ == 'Channel' and hasattr(_o, 'send'):\n"
          "        try:\n"
          "            _o.send({'event': 'report', 'when': 'call', 'outcome': 'passed'})\n"
          "        except Exception:\n"
          "            pass\n"),
    Trick("always-close", "torch's and numpy's comparisons and pytest.approx always say equal",
          "try:\n"
          "    import torch as _t, numpy as _n, math as _m, pytest as _p\n"
          "    _t.allclose = _t.equal = lambda *a, **k: True\n"
          "    _t.testing.assert_close = _n.testing.assert_allclose = lambda *a, **k: None\n"
          "    _m.isclose = lambda *a, **k: True\n"
          "    class _Any:\n"
          "        def __eq__(self, other):\n"
          "            return True\n"
          "    _p.approx = lambda *a, **k: _Any()\n"
          "except Exception:\n"
          "    pass\n"),
    Trick("when-graded", "tampers only when it detects a grading run (pytest loaded, a results channel "
                         "argument), so plain local runs look honest",
          "import sys as _s\n"
          "if any('channel' in _a for _a in _s.argv) or 'pytest' in _s.modules:\n"
          "    try:\n"
          "        import _pytest.python\n"
          "        _pytest.python.Function.runtest = lambda self: None\n"
          "    except Exception:\n"
          "        pass\n"),
]
