"""The safe loader's invariant, checked on every input of the loads target.

``safe_loads`` does what ``loads`` does, plus checks that raise ``ForbiddenGlobalError``: so on
any input it either refuses, or ends exactly as ``loads`` does (the same value, or an exception
of the same class). Anything else (a crash, a panic, a SystemError, a different value or error) is
a finding.
"""

import common
from common import Finding, check_exception, outcome


def check(data, canonical):
    p5 = common.pickle5_rs
    allow = p5.SAFE_STDLIB | p5.SAFE_NUMPY
    ok_safe, safe = outcome(lambda: p5.safe_loads(data, allow=allow), "pickle5_rs")
    if not ok_safe:
        check_exception(safe, "safe_loads")
        if isinstance(safe, p5.ForbiddenGlobalError):
            return
    ok_plain, plain = outcome(lambda: p5.loads(data), "pickle5_rs")
    for ok, value in ((ok_safe, safe), (ok_plain, plain)):
        if not ok and isinstance(value, (RecursionError, MemoryError)):
            return  # depends on stack depth / address space, not on the input alone
    if ok_safe != ok_plain:
        raise Finding(
            "safe_loads %s, loads %s"
            % (
                "returned" if ok_safe else "raised %r" % (safe,),
                "returned" if ok_plain else "raised %r" % (plain,),
            )
        )
    if not ok_safe:
        if type(safe) is not type(plain):
            raise Finding("safe_loads raised %r, loads %r" % (safe, plain))
        return
    a, b = canonical(safe), canonical(plain)
    if a != b:
        raise Finding("safe_loads and loads differ:\n  safe %r\n  loads %r" % (a, b))
