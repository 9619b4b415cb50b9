"""hw3.remote: the worker boundary of issue 14, on its own (test_autograder/test_worker_boundary.py
tests it through the grader). Long because the protocol has many small cases, each a few lines.

The codec lets plain data through and nothing else, on both sides; the worker runs a student file
in its own process and answers calls, models as handles, gradients, RNG state and errors as data;
the worker never holds test code. Student files are written into tmp_path: no training.
"""
import collections
import io
import math
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn

from hw3 import devicecheck
from hw3.remote import RemoteError, RemoteHandle, RemoteModule, StudentError, codec

# --- the codec ------------------------------------------------------------------------------------


class MyTensor(torch.Tensor):
    pass


class AlwaysEqual:
    def __eq__(self, other):
        return True


class EqualInt(int):
    def __eq__(self, other):
        return True


def same(a, b) -> bool:
    """Equal, with the exact types of every part (a tuple stays a tuple, NaN equals NaN)."""
    if type(a) is not type(b):
        return False
    if type(a) is torch.Tensor:
        return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)
    if type(a) in (list, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if type(a) is float and math.isnan(a):
        return math.isnan(b)
    return a == b


PLAIN = [
    *[torch.arange(6).reshape(2, 3).to(dtype) for dtype in sorted(codec.DTYPES, key=str)],
    torch.tensor(2.5), torch.zeros(0, 3), torch.randn(3, 4).t(),  # 0-d, empty, non-contiguous
    0, -(2 ** 63), 2.5, float("nan"), float("-inf"), True, False, None, "", "héllo ✓", b"\x00\xff",
    [], (), {}, [1, (2.0, None)], {"mu": torch.ones(2), "nested": {"k": [True, "s", (b"b",)]}},
]


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_plain_values_round_trip_with_their_types(value):
    assert same(codec.decode(codec.encode(value)), value)


def test_a_slice_travels_without_its_storage_and_shared_tensors_arrive_apart():
    big = torch.zeros(1_000_000)
    assert len(codec.encode(big[:10])) < 10_000  # not the 4 MB it is a view of
    x = torch.arange(4.)
    a, b = codec.decode(codec.encode((x, x)))
    a += 1
    assert torch.equal(b, torch.arange(4.)), "two values that were one tensor must arrive as two"


def test_tensors_arrive_detached():
    leaf = torch.ones(2, requires_grad=True)
    out = codec.decode(codec.encode(leaf * 2))
    assert type(out) is torch.Tensor and not out.requires_grad and torch.equal(out, torch.full((2,), 2.))


REFUSED = [
    ([0, {"mu": torch.zeros(2).as_subclass(MyTensor)}],
     "result[1]['mu']: a MyTensor (a torch.Tensor subclass) cannot cross; return a plain tensor"),
    ({"loss": AlwaysEqual()}, "result['loss']: an AlwaysEqual (from module"),
    ((EqualInt(3),), "result[0]: an EqualInt (an int subclass) cannot cross; return a plain int"),
    ([np.zeros(3)], "result[0]: a numpy.ndarray cannot cross; return a torch tensor"),
    (np.float64(1.0), "result: a numpy.float64 cannot cross"),
    (nn.Linear(2, 2), "result: a Linear (a torch.nn.Module) cannot cross"),
    ((i for i in range(3)), "result: a generator cannot cross; return a list"),
    (collections.OrderedDict(a=1), "result: an OrderedDict (a dict subclass)"),
    ({1: "x"}, "result: a dict key of type int cannot cross"),
    (torch.eye(3).to_sparse(), "result: a torch.sparse_coo tensor cannot cross"),
    (torch.zeros(1, dtype=torch.uint8).expand(codec.MAX_TENSOR_BYTES + 1), "tensors exceed"),
    ([torch.zeros(1, dtype=torch.uint8).expand(codec.MAX_TENSOR_BYTES // 2)] * 3, "result[2]: the tensors exceed"),
    ("x" * (codec.MAX_STRING_CHARS + 1), "result: a string of 1,000,001 characters"),
    (b"x" * (codec.MAX_BYTES_LEN + 1), "result: 1,000,001 bytes cannot cross"),
    (2 ** 70, "result: an int of 71 bits"),
    ([None] * codec.MAX_ITEMS, "more than 200,000 values"),
]


def nested(levels):
    """``levels`` lists, each inside the next."""
    value = []
    for _ in range(levels - 1):
        value = [value]
    return value


@pytest.mark.parametrize("value, message", [*REFUSED, (nested(codec.MAX_DEPTH + 1), "nested deeper than 32")],
                         ids=lambda v: type(v).__name__ if not isinstance(v, str) else v[:20])
def test_what_is_not_plain_data_is_refused_where_it_is(value, message):
    with pytest.raises(RemoteError) as raised:
        codec.encode(value)
    assert message in str(raised.value)


def test_the_limits_themselves_pass():
    codec.check(nested(codec.MAX_DEPTH))
    codec.check("x" * codec.MAX_STRING_CHARS)
    codec.check(torch.zeros(1, dtype=torch.uint8).expand(codec.MAX_TENSOR_BYTES))


def raw(value) -> bytes:
    """What a sender that is not codec.encode could put on the stream."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


SHARED = torch.zeros(4)


class Payload:
    def __reduce__(self):
        return (exec, ("open(__import__('os').environ['REMOTE_MARK'], 'w').write('ran')",))


@pytest.mark.parametrize("data, message", [
    (raw({"p": nn.Parameter(torch.zeros(2))}), "message['p']: a Parameter (a torch.Tensor subclass)"),
    (raw(collections.OrderedDict(a=1)), "message: an OrderedDict"),
    (raw(torch.ones(2, requires_grad=True)), "arrived requiring grad"),
    (raw(torch.zeros(10)[2:4]), "a view into a larger storage"),
    (raw(torch.zeros(10)[:5]), "message: a tensor arrived that is a view into a larger storage"),
    (raw([SHARED, SHARED]), "message[1]: a tensor arrived sharing its storage with another"),
    (raw(torch.zeros(5, 2).t()), "a view into a larger storage"),
    (b"not a torch file", "could not be read as plain data"),
], ids=["parameter", "ordereddict", "requires-grad", "view", "prefix", "shared", "transposed", "garbage"])
def test_decode_refuses_what_encode_never_makes(data, message):
    with pytest.raises(RemoteError) as raised:
        codec.decode(data)
    assert message in str(raised.value)


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_decoding_never_runs_code(tmp_path, monkeypatch):
    mark = tmp_path / "mark"
    monkeypatch.setenv("REMOTE_MARK", str(mark))
    for data in (pickle.dumps(Payload()), raw({"x": Payload()})):
        with pytest.raises(RemoteError, match="could not be read as plain data"):
            codec.decode(data)
    assert not mark.exists()


def test_an_oversized_message_is_refused_unread():
    with pytest.raises(RemoteError, match="at most"):
        codec.decode(b"\0" * (codec.MAX_MESSAGE_BYTES + 1))


# --- the worker -----------------------------------------------------------------------------------

STUDENT = '''
import gc, os, sys
import torch
import torch.nn as nn

NOISE_DIM = 96


class MyTensor(torch.Tensor):
    pass


class AlwaysEqual:
    def __eq__(self, other):
        return True


def randn(*shape):
    return torch.randn(*shape)


def sample_noise(n, d, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    return torch.rand(n, d) * 2 - 1


def pair(x):
    return x * 2, {"mu": x.sum(), "n": x.numel(), "shape": x.shape}


def subclass():
    return [0, {"mu": torch.zeros(2).as_subclass(MyTensor)}]


def always_equal():
    return AlwaysEqual()


def helper(x):
    raise ValueError(f"bad input {x}")


def fails(x):
    return helper(x)


def exits():
    sys.exit(3)


def loud():
    print("x" * 2_000_000)
    os.write(1, b"written to fd 1\\n")
    print("to stderr", file=sys.stderr)
    return "done"


def die():
    print("last words")
    os._exit(7)


def segfault():
    import ctypes
    ctypes.string_at(0)


def model():
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(32, 3))


def frames():
    """What a student looking for the caller's test sees: every frame's file, every module."""
    frame, files = sys._getframe(), []
    while frame is not None:
        files.append(frame.f_code.co_filename)
        frame = frame.f_back
    return files, sorted(str(getattr(m, "__file__", None)) for m in list(sys.modules.values()))


def tamper():
    import pytest
    pytest.approx = lambda *args, **kwargs: True
    torch.equal = lambda *args: True
    torch.Tensor.__eq__ = lambda *args: True
    return torch.equal(torch.zeros(1), torch.ones(1))


def protocol_stream():
    return [o for o in gc.get_objects() if type(o).__name__ == "Streams"][0].responses


def forge_garbage():
    os.write(protocol_stream(), (10).to_bytes(8, "big") + b"x" * 10)
    return 1


def forge_parameter():
    import io
    buffer = io.BytesIO()
    torch.save({"ok": True, "value": nn.Parameter(torch.zeros(2)), "rng": torch.get_rng_state()}, buffer)
    data = buffer.getvalue()
    os.write(protocol_stream(), len(data).to_bytes(8, "big") + data)
    return 1


def hang():
    import time
    time.sleep(600)


def square_sum(x, scale=1.0):
    return scale * (x ** 2).sum()


def count(model):
    return sum(p.numel() for p in model.parameters())


def environment(name):
    return os.environ.get(name)
'''


def reference_model():
    """The student's model(), built here in-process."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(32, 3))


def student_folder(folder, source=STUDENT):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "gan.py").write_text(source)
    return folder


@pytest.fixture(scope="module")
def gan(tmp_path_factory):
    remote = RemoteModule("gan", student_folder(tmp_path_factory.mktemp("student")), threads=1)
    yield remote
    remote.close()


def test_functions_return_plain_data_and_constants_their_values(gan):
    doubled, info = gan.pair(torch.arange(3.))
    assert torch.equal(doubled, torch.tensor([0., 2., 4.])) and type(doubled) is torch.Tensor
    assert same(info, {"mu": torch.tensor(3.), "n": 3, "shape": (3,)})
    assert gan.NOISE_DIM == 96 and type(gan.NOISE_DIM) is int
    assert hasattr(gan, "pair") and not hasattr(gan, "no_such_function")


def test_refused_results_name_the_place_and_the_worker_goes_on(gan):
    with pytest.raises(RemoteError, match=r"result\[1\]\['mu'\]: a MyTensor \(a torch.Tensor subclass\) cannot cross"):
        gan.subclass()
    with pytest.raises(RemoteError, match="an AlwaysEqual"):
        gan.always_equal()
    assert gan.NOISE_DIM == 96


def test_student_exceptions_come_back_named_in_the_students_file(gan):
    with pytest.raises(StudentError) as raised:
        gan.fails(3)
    text = str(raised.value)
    assert text.startswith("ValueError: bad input 3\n"), text
    assert 'File "gan.py", line' in text and "in helper" in text and "in fails" in text
    assert "hw3/remote" not in text and "worker.py" not in text
    assert raised.value.kind == "ValueError" and raised.value.message == "bad input 3"
    with pytest.raises(StudentError, match="^SystemExit: 3"):
        gan.exits()


def test_prints_are_bounded_and_never_reach_the_protocol(gan, capsys):
    assert gan.loud() == "done"
    shown = capsys.readouterr().out
    assert "written to fd 1" in shown and "to stderr" in shown and "bytes of output not shown" in shown
    assert len(shown) < 20_000


@pytest.mark.parametrize("function, how", [("die", "exit status 7 during gan.die; the end of its output:\nlast words"),
                                           ("segfault", r"killed by signal 11 \(SIGSEGV\)")])
def test_a_dead_worker_is_an_error_and_the_next_call_restarts_it(gan, function, how):
    model = gan.model()
    with pytest.raises(StudentError, match=f"^the worker process died: {how}"):
        getattr(gan, function)()
    assert gan.NOISE_DIM == 96
    with pytest.raises(RemoteError, match="build it again"):
        model.state_dict()


def test_a_model_is_a_handle_that_computes_as_in_process(gan):
    remote, local = gan.model(), reference_model()
    assert isinstance(remote, RemoteHandle) and remote.remote_class == "Sequential"
    assert gan.model() is not remote  # a new model, a new handle
    rows = {row["name"]: row for row in remote.structure()}
    classes = [rows[n]["class"] for n in ("", "0", "1", "2", "3")]
    assert classes == ["Sequential", "Conv2d", "LeakyReLU", "Flatten", "Linear"]
    assert rows["0"]["module"] == "torch.nn.modules.conv"
    assert rows["0"]["hyperparameters"].items() >= {"in_channels": 1, "out_channels": 2, "kernel_size": (3, 3),
                                                    "stride": (1, 1), "padding": (1, 1), "bias": True}.items()
    assert rows["1"]["hyperparameters"]["negative_slope"] == 0.2
    assert rows["3"]["hyperparameters"].items() >= {"in_features": 32, "out_features": 3, "bias": True}.items()
    assert rows["3"]["parameters"] == {"weight": [3, 32], "bias": [3]}
    state = remote.state_dict()
    expected = local.state_dict()
    assert list(state) == list(expected) and all(torch.equal(state[k], v) for k, v in expected.items())
    assert remote.num_parameters() == sum(p.numel() for p in local.parameters()) == 119
    assert [n for n, _ in remote.named_parameters()] == [n for n, _ in local.named_parameters()]
    x = torch.randn(5, 1, 4, 4)
    assert torch.equal(remote(x), local(x))
    assert remote.training and remote.eval() is remote and not remote.training and remote.train().training
    assert len(remote) == 4 and remote[3].remote_class == "Linear" and remote[3].out_features == 3
    assert torch.equal(remote[3].bias, local[3].bias.detach())  # a Parameter arrives as a plain tensor
    assert gan.count(remote) == 119  # a handle passed back is the worker's object again


def test_backward_gives_the_in_process_gradients(gan):
    remote, local = gan.model(), reference_model()
    x, upstream = torch.randn(5, 1, 4, 4), torch.randn(5, 3)
    result = remote.backward([x], upstream)
    x_local = x.clone().requires_grad_()
    out = local(x_local)
    out.backward(upstream)
    assert torch.equal(result["output"], out.detach())
    assert torch.allclose(result["input_grads"][0], x_local.grad)
    for name, p in local.named_parameters():
        assert torch.allclose(result["parameter_grads"][name], p.grad), name
    again = remote.backward([x], upstream)  # this request's gradients only, not accumulated
    assert torch.equal(again["parameter_grads"]["3.bias"], result["parameter_grads"]["3.bias"])


def test_backward_through_a_function(gan):
    x = torch.tensor([1., -2., 3.])
    result = gan.square_sum.backward([x], torch.tensor(2.), scale=0.5)
    assert result["output"].item() == 7.0 and torch.equal(result["input_grads"][0], 2 * 0.5 * 2 * x)
    assert result["parameter_grads"] == {}


def test_load_state_dict_changes_the_workers_model(gan):
    remote = gan.model()
    zeros = {k: torch.zeros_like(v) for k, v in remote.state_dict().items()}
    assert remote.load_state_dict(zeros) == {"missing": [], "unexpected": []}
    assert torch.equal(remote(torch.randn(2, 1, 4, 4)), torch.zeros(2, 3))
    with pytest.raises(StudentError, match="Missing key"):
        remote.load_state_dict({})


def test_seeding_the_judge_seeds_the_worker(gan):
    torch.manual_seed(0)
    remote = gan.randn(3)
    after = torch.randn(2)  # the judge's stream moved on past the request, the same way every run
    torch.manual_seed(0)
    assert torch.equal(remote, torch.randn(3))
    torch.manual_seed(0)
    gan.randn(3)
    assert torch.equal(torch.randn(2), after)
    torch.manual_seed(5)
    assert not torch.equal(gan.randn(3), remote)
    torch.manual_seed(231)
    torch.rand(2, 2)
    expected = torch.randn(1)
    gan.sample_noise(2, 2, seed=231)  # the student's own seeding stays in the worker: it cannot pick the judge's draws
    assert not torch.equal(torch.randn(1), expected)


def test_the_worker_holds_no_test_code(gan):
    files, module_files = gan.frames()
    assert {Path(f).name for f in files} <= {"gan.py", "worker.py", "<frozen runpy>"}, files
    tests = Path(__file__).resolve().parent.parent
    assert not [f for f in module_files if tests in Path(f).resolve().parents or "conftest" in f]


def test_the_judge_never_imports_the_students_file(gan):
    assert gan.NOISE_DIM == 96
    student_file = str(gan._file)
    assert not [m for m in list(sys.modules.values()) if getattr(m, "__file__", None) == student_file]


def test_tampering_in_the_worker_stays_in_the_worker(gan):
    assert gan.tamper() is True  # the worker's torch.equal now says yes to everything ...
    assert not torch.equal(torch.zeros(1), torch.ones(1))  # ... the judge's does not
    assert 1.0 != pytest.approx(2.0)
    assert not torch.equal(gan.randn(2), torch.zeros(2))


@pytest.mark.parametrize("function, message", [("forge_garbage", "could not be read as plain data"),
                                               ("forge_parameter", "a Parameter (a torch.Tensor subclass)")])
def test_forged_responses_are_refused(gan, function, message):
    with pytest.raises(RemoteError) as raised:
        getattr(gan, function)()
    assert message in str(raised.value) and "the worker was stopped" in str(raised.value)
    assert gan.NOISE_DIM == 96


def test_a_hanging_call_times_out_and_the_launcher_wraps_the_worker(tmp_path):
    seen = []

    def launcher(argv):
        seen.append(argv)
        return ["env", "REMOTE_MARK=launched", *argv]

    with RemoteModule("gan", student_folder(tmp_path), launcher, timeout=2, threads=1) as remote:
        assert remote.environment("REMOTE_MARK") == "launched"
        assert seen[0][1:4] == ["-m", "hw3.remote.worker", "--impl-file"]
        with pytest.raises(StudentError, match=r"^gan.hang did not answer within 2 s"):
            remote.hang()
        assert remote.environment("REMOTE_MARK") == "launched" and len(seen) == 2


@pytest.mark.parametrize("source, message", [
    ("x = 1\ndef f(:\n", "SyntaxError"),
    ("import torch\nraise RuntimeError('no GPU here')\n", 'RuntimeError: no GPU here\n  File "gan.py", line 2'),
    ("import os\nos._exit(4)\n", "the worker process died: exit status 4 during importing gan.py"),
], ids=["syntax", "raises", "exits"])
def test_an_import_error_is_the_students_and_names_their_file(tmp_path, source, message):
    with RemoteModule("gan", student_folder(tmp_path, source), threads=1) as remote:
        with pytest.raises(StudentError) as raised:
            remote.f()
        assert message in str(raised.value)
        assert "hw3/impl.py" not in str(raised.value) and "importlib" not in str(raised.value)


# --- provided code in the worker ------------------------------------------------------------------

def test_provided_functions_run_beside_the_students_code(tmp_path):
    source = "import torch\ndef one_hot(y, num_classes=10):\n    return torch.eye(num_classes)[y]\n"
    (tmp_path / "cvae.py").write_text(source)
    with RemoteModule("cvae", tmp_path, threads=1) as cvae:
        report = cvae.provided("hw3.remote.probes.on_device", "one_hot", [torch.tensor([1, 2])])
        assert report["error"].startswith("WrongDevice") and report["wrong_device"] and not report["outputs"]
        with pytest.raises(AssertionError, match="created a tensor on the CPU"):
            devicecheck.judged(report, "one_hot(labels)", "use labels.device")
        for name in ("os.system", "hw3.impl._private", "hw3.remote.probes.torch", "hw3..x", "hw3.remote"):
            with pytest.raises(RemoteError, match="provided function|not a function defined"):
                cvae.provided(name)


def test_a_device_probe_reports_values_and_gradients(tmp_path):
    source = "import torch\ndef scale(x):\n    return 2 * x, torch.ones_like(x)\n"
    (tmp_path / "cvae.py").write_text(source)
    with RemoteModule("cvae", tmp_path, threads=1) as cvae:
        report = cvae.provided("hw3.remote.probes.on_device", "scale", [torch.ones(3)], backward=True)
    doubled, ones = devicecheck.judged(report, "scale(x)", "hint")
    assert torch.equal(doubled, 2 * torch.ones(3)) and torch.equal(ones, torch.ones(3))
    assert torch.equal(devicecheck.judged_tensor(report["grads"][0], "the gradient", "hint"), 2 * torch.ones(3))


def test_a_model_cannot_hide_or_invent_parameters_by_overriding_methods(tmp_path):
    source = ("import torch.nn as nn\n"
              "class Liar(nn.Linear):\n"
              "    def named_parameters(self, *a, **k):\n"
              "        return iter([])\n"
              "    def state_dict(self, *a, **k):\n"
              "        return {}\n"
              "    def named_modules(self, *a, **k):\n"
              "        return iter([])\n"
              "def model():\n"
              "    return Liar(3, 2)\n")
    (tmp_path / "gan.py").write_text(source)
    with RemoteModule("gan", tmp_path, threads=1) as gan:
        liar = gan.construct("model")
        assert liar.parameter_shapes() == [("weight", [2, 3]), ("bias", [2])]
        assert set(liar.state_dict()) == {"weight", "bias"} and liar.num_parameters() == 8
        assert [m["name"] for m in liar.structure()] == [""]


def test_an_interrupted_request_never_answers_the_next_one(tmp_path):
    """pytest-timeout (SIGALRM) or Ctrl-C interrupts a request: the worker is dropped, not kept with
    a late reply that the next request would read as its own."""
    import signal

    class Interrupted(Exception):
        pass

    def interrupt(signum, frame):
        raise Interrupted

    with RemoteModule("gan", student_folder(tmp_path), threads=1) as remote:
        assert remote.environment("HOME") is not None
        previous = signal.signal(signal.SIGALRM, interrupt)
        try:
            signal.alarm(1)
            with pytest.raises(Interrupted):
                remote.hang()
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
        assert remote.NOISE_DIM == 96 and remote.square_sum(torch.ones(2)).item() == 2.0


def test_a_method_of_a_temporary_handle_keeps_it_alive(gan):
    """``gan.model().double()``: the handle is garbage the moment .double is looked up."""
    import gc
    doubled = gan.model().double()
    gc.collect()
    assert doubled.state_dict()["0.weight"].dtype == torch.float64
