"""The guards Problem 1's probes (hw3/cnn_experiment.py) run the student's conv2d under, in the
worker: PyTorch's convolutions switched off however they are reached (``torch_convolutions_disabled``),
tensor operations counted up to a budget (``OperatorWatch``) and a time limit (``time_limit``). Each
raises an AssertionError subclass naming what was refused, and keeps a record of it in case the code
under test caught the error.
"""
import re
import signal
import threading
import warnings
from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

# Every public entry point to PyTorch's convolutions; while conv2d runs under the probe each raises.
TORCH_CONVOLUTIONS = [
    (F, ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv_tbc"]),
    (torch, ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d", "conv_tbc",
             "convolution", "_convolution", "_convolution_mode", "cudnn_convolution", "mkldnn_convolution",
             "miopen_convolution", "_nnpack_spatial_convolution"]),
    (torch.nn.grad, ["conv1d_input", "conv1d_weight", "conv2d_input", "conv2d_weight", "conv3d_input",
                     "conv3d_weight"]),
] + [(module, ["forward", "_conv_forward"]) for module in (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                                                             nn.ConvTranspose2d, nn.ConvTranspose3d)]
# Below those, every convolution reaches one of these operators of PyTorch's dispatcher.
CONVOLUTION_OPERATOR = re.compile(r"conv(olution|_transpose|_tbc|_depthwise|\d)|slow_conv|thnn_conv")
NO_CONVOLUTIONS = ("conv2d must compute the convolution from its formula (unfold/slicing, multiplications, sums), "
                   "without torch.nn.functional.conv*, torch.conv*, torch.convolution or nn.Conv*")


class ForbiddenCall(AssertionError):
    pass


class OperationBudgetExceeded(AssertionError):
    pass


class TimeLimitExceeded(AssertionError):
    pass


class OperatorWatch(TorchDispatchMode):
    """Sees every tensor operation that reaches PyTorch's dispatcher (forward and backward): counts
    them, stops at a budget, and refuses convolution operators however they were called. What it
    refused is kept in ``refused`` and ``exceeded`` (in case the code under test caught it)."""

    @classmethod
    def _should_skip_dynamo(cls):
        return False  # PyTorch's documented opt-out: otherwise entering the mode imports torch._dynamo (seconds)

    def __init__(self, budget=None, budget_message="", forbid_convolutions=False):
        super().__init__()
        self.count, self.budget, self.budget_message = 0, budget, budget_message
        self.forbid_convolutions = forbid_convolutions
        self.refused, self.exceeded = [], False

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func)
        if self.forbid_convolutions and CONVOLUTION_OPERATOR.search(name):
            error = ForbiddenCall(f"your code reached PyTorch's convolution operator {name}: {NO_CONVOLUTIONS}")
            self.refused.append(str(error))
            raise error
        self.count += 1
        if self.budget is not None and self.count > self.budget:
            self.exceeded = True
            raise OperationBudgetExceeded(self.budget_message)
        return func(*args, **(kwargs or {}))


@contextmanager
def torch_convolutions_disabled():
    """Within the block, calling any of PyTorch's convolutions raises ForbiddenCall (each attempt is
    also kept in the watch's ``refused``); restored after. Yields the OperatorWatch."""
    refused = []

    def forbidden(label):
        def call(*args, **kwargs):
            error = ForbiddenCall(f"your code called {label}: {NO_CONVOLUTIONS}")
            refused.append(str(error))
            raise error
        return call

    saved = []
    try:
        for owner, names in TORCH_CONVOLUTIONS:
            for name in names:
                if hasattr(owner, name):
                    saved.append((owner, name, owner.__dict__.get(name, _MISSING) if isinstance(owner, type)
                                  else getattr(owner, name)))
                    setattr(owner, name, forbidden(f"{getattr(owner, '__name__', owner)}.{name}"))
        with convolution_kernels_refused(forbidden), OperatorWatch(forbid_convolutions=True) as watch:
            watch.refused = refused
            yield watch
    finally:
        for owner, name, value in reversed(saved):
            if value is _MISSING:
                delattr(owner, name)
            else:
                setattr(owner, name, value)


_MISSING = object()
# PyTorch's CPU convolution kernels, however they are reached: a function or operator held from before
# the block, another thread (the OperatorWatch sees only its own), torch.nn.grad, torch.ops.aten.
CONVOLUTION_KERNELS = ("convolution", "_convolution", "convolution_overrideable", "convolution_backward",
                       "mkldnn_convolution", "_slow_conv2d_forward", "thnn_conv2d", "slow_conv_dilated2d",
                       "_nnpack_spatial_convolution")


@contextmanager
def convolution_kernels_refused(forbidden):
    """Within the block, PyTorch's CPU convolution kernels raise ``forbidden(label)``'s error, in every
    thread of this process (kernels registered over aten's, removed after)."""
    library = torch.library.Library("aten", "IMPL")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "overriding a previously registered kernel": that is the point
            for name in CONVOLUTION_KERNELS:
                try:
                    library.impl(name, forbidden(f"PyTorch's convolution kernel aten::{name}"), "CPU")
                except RuntimeError:  # an operator this torch does not have
                    pass
        yield
    finally:
        library._destroy()


@contextmanager
def time_limit(seconds, message):
    """Raise TimeLimitExceeded(message) in this (main) thread after ``seconds``; a no-op where the
    platform has no SIGUSR1. Uses its own signal, so a SIGALRM timer is left alone. Yields a dict
    whose "expired" says whether the limit was reached (in case the code under test caught it)."""
    state = {"expired": False}
    if not hasattr(signal, "SIGUSR1") or threading.current_thread() is not threading.main_thread():
        yield state
        return

    def on_signal(signum, frame):
        state["expired"] = True
        raise TimeLimitExceeded(message)

    done = threading.Event()
    main = threading.main_thread().ident

    def watchdog():
        if not done.wait(seconds):
            signal.pthread_kill(main, signal.SIGUSR1)

    previous = signal.signal(signal.SIGUSR1, on_signal)
    thread = threading.Thread(target=watchdog, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        done.set()
        thread.join()
        signal.signal(signal.SIGUSR1, previous)
