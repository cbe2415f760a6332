"""python -m pickle5_rs: disassemble, vet or load pickles, reading files or standard input (``-``).

  dis   FILE...   the disassembly pickletools.dis prints on Python 3.8+ (protocol 5 included), on
                  every supported version; --memo keeps the memo from one file to the next,
                  --indent sets the indentation of a MARK level.
  scan  FILE...   without importing or running anything: every global the pickles name, every
                  call they make (REDUCE, NEWOBJ, NEWOBJ_EX, INST, OBJ, BUILD, and what each
                  applies to), out-of-band buffers and persistent ids. Exit status 1 when anything
                  is outside --allow (default: the safe stdlib preset), 0 otherwise.
  load  FILE...   pretty-prints the object each file holds, through the safe loader (--allow,
                  default the safe stdlib preset) unless --unsafe.

--allow takes names (module.name, module:qualname) and presets (stdlib, numpy, none), comma-
separated or repeated: --allow stdlib,numpy --allow mypackage.Point. Malformed input gives a
one-line error and exit status 2.
"""

import argparse
import io
import json
import pprint
import sys

import pickle5_rs

from ._allow import SAFE_NUMPY, SAFE_STDLIB, AllowList
from ._disassembler import dis
from ._scan import scan, spell

PRESETS = {"stdlib": SAFE_STDLIB, "numpy": SAFE_NUMPY, "none": AllowList()}

EXIT_OK, EXIT_OUTSIDE, EXIT_MALFORMED = 0, 1, 2


class CommandError(Exception):
    """A one-line error for the user, with the exit status to give."""

    def __init__(self, message, status=EXIT_MALFORMED):
        Exception.__init__(self, message)
        self.status = status


def _allow_list(values):
    if not values:
        return SAFE_STDLIB
    allow = AllowList()
    for value in values:
        for token in value.split(","):
            token = token.strip()
            if not token:
                continue
            if token in PRESETS:
                allow = allow | PRESETS[token]
            else:
                try:
                    allow = allow | [token]
                except ValueError as exc:
                    raise CommandError("--allow: %s" % exc) from None
    return allow


def _read(path):
    """The whole input: a file's bytes, or standard input's for '-'."""
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise CommandError("%s: %s" % (path, exc.strerror or exc)) from None


def _name(path):
    return "<stdin>" if path == "-" else path


def _describe_error(exc):
    text = str(exc).replace("\n", " ")
    return "%s: %s" % (type(exc).__name__, text) if text else type(exc).__name__


# --- dis -----------------------------------------------------------------------------------------


def run_dis(args, out):
    memo = {} if args.memo else None
    for path in args.files:
        data = _read(path)
        if len(args.files) > 1:
            out.write(args.preamble.format(name=_name(path)) + "\n")
        try:
            dis(io.BytesIO(data), out, memo, args.indent)
        except Exception as exc:
            out.flush()
            raise CommandError("%s: %s" % (_name(path), _describe_error(exc))) from None
    return EXIT_OK


# --- scan ----------------------------------------------------------------------------------------


def _print_report(name, report, allow_count, out):
    protocols = ", ".join(str(p) for p in report.protocols) or "0 or 1"
    out.write(
        "%s: %d pickle%s, protocol %s, checked against %d allowed globals\n"
        % (name, report.pickles, "" if report.pickles == 1 else "s", protocols, allow_count)
    )
    out.write("globals:\n" if report.globals else "globals: none\n")
    width = max([len(spell(m, n)) for m, n in report.globals] + [10])
    for (module, name_), (count, first, allowed, written) in report.globals.items():
        out.write(
            "  %-*s  %-9s x%-6d at %d%s\n"
            % (
                width,
                spell(module, name_),
                "allowed" if allowed else "FORBIDDEN",
                count,
                first,
                ", written %s" % written if written else "",
            )
        )
    out.write("calls:\n" if report.calls else "calls: none\n")
    width = max([len(target) for _, target in report.calls] + [10])
    for (opname, target), (count, first, problem) in report.calls.items():
        out.write(
            "  %-9s %-*s  x%-6d at %d%s\n"
            % (opname, width, target, count, first, "  FORBIDDEN: " + problem if problem else "")
        )
    if report.buffers:
        out.write(
            "out-of-band buffers: %d, at %s\n" % (len(report.buffers), ", ".join(map(str, report.buffers)))
        )
    else:
        out.write("out-of-band buffers: none\n")
    if report.persistent_ids:
        out.write("persistent ids:\n")
        for pos, pid in report.persistent_ids:
            out.write("  at %d: %r\n" % (pos, pid))
    else:
        out.write("persistent ids: none\n")
    if report.ok:
        out.write("verdict: everything is within the allow-list\n")
    else:
        out.write(
            "verdict: %d problem%s, outside the allow-list:\n"
            % (len(report.problems), "" if len(report.problems) == 1 else "s")
        )
        for pos, text in report.problems[:20]:
            out.write("  at %d: %s\n" % (pos, text))
        if len(report.problems) > 20:
            out.write("  ... and %d more\n" % (len(report.problems) - 20))


def run_scan(args, out):
    allow = _allow_list(args.allow)
    status = EXIT_OK
    results = []
    for path in args.files:
        data = _read(path)
        try:
            report = scan(io.BytesIO(data), allow, fix_imports=not args.no_fix_imports)
        except Exception as exc:
            raise CommandError("%s: malformed pickle: %s" % (_name(path), _describe_error(exc))) from None
        if not report.ok:
            status = EXIT_OUTSIDE
        if args.json:
            results.append(dict(report.as_dict(), file=_name(path)))
        else:
            _print_report(_name(path), report, len(allow), out)
    if args.json:
        json.dump(results if len(results) != 1 else results[0], out, indent=1)
        out.write("\n")
    return status


# --- load ----------------------------------------------------------------------------------------


def run_load(args, out):
    allow = None if args.unsafe else _allow_list(args.allow)
    for path in args.files:
        data = _read(path)
        kwargs = {"encoding": args.encoding, "fix_imports": not args.no_fix_imports}
        try:
            if allow is None:
                obj = pickle5_rs.loads(data, **kwargs)
            else:
                obj = pickle5_rs.safe_loads(data, allow=allow, **kwargs)
        except pickle5_rs.ForbiddenGlobalError as exc:
            raise CommandError("%s: refused: %s (see --allow)" % (_name(path), exc), EXIT_OUTSIDE) from None
        except Exception as exc:
            raise CommandError("%s: cannot load: %s" % (_name(path), _describe_error(exc))) from None
        pprint.pprint(obj, stream=out)
    return EXIT_OK


# --- the command line ----------------------------------------------------------------------------


def _parser():
    parser = argparse.ArgumentParser(
        prog="python -m pickle5_rs",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="{dis,scan,load}")
    commands.required = True

    p = commands.add_parser("dis", help="disassemble, as pickletools.dis does")
    p.add_argument("files", nargs="+", metavar="FILE", help="pickle file, or - for standard input")
    p.add_argument("-m", "--memo", action="store_true", help="keep the memo from one file to the next")
    p.add_argument(
        "-l",
        "--indent",
        "--indentlevel",
        type=int,
        default=4,
        metavar="N",
        help="blanks per MARK level (default 4)",
    )
    p.add_argument(
        "-p",
        "--preamble",
        default="==> {name} <==",
        help="printed before each file when there are several (default '==> {name} <==')",
    )
    p.set_defaults(run=run_dis)

    allow_help = (
        "allowed globals: module.name, module:qualname, or a preset (stdlib, numpy, none); "
        "comma-separated or repeated (default: stdlib)"
    )
    p = commands.add_parser("scan", help="list globals and calls without running anything")
    p.add_argument("files", nargs="+", metavar="FILE", help="pickle file, or - for standard input")
    p.add_argument("-a", "--allow", action="append", metavar="NAMES", help=allow_help)
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--no-fix-imports", action="store_true", help="no Python 2 name mapping (as fix_imports=False)"
    )
    p.set_defaults(run=run_scan)

    p = commands.add_parser("load", help="load through the safe loader and pretty-print")
    p.add_argument("files", nargs="+", metavar="FILE", help="pickle file, or - for standard input")
    p.add_argument("-a", "--allow", action="append", metavar="NAMES", help=allow_help)
    p.add_argument(
        "--unsafe",
        action="store_true",
        help="load with the unrestricted loader (runs whatever the pickle names)",
    )
    p.add_argument("--encoding", default="ASCII", help="for Python 2 str (as in loads; default ASCII)")
    p.add_argument(
        "--no-fix-imports", action="store_true", help="no Python 2 name mapping (as fix_imports=False)"
    )
    p.set_defaults(run=run_load)
    return parser


def main(argv=None):
    args = _parser().parse_args(argv)
    out = sys.stdout
    try:
        return args.run(args, out)
    except CommandError as exc:
        out.flush()
        sys.stderr.write("python -m pickle5_rs %s: error: %s\n" % (args.command, exc))
        return exc.status
    except BrokenPipeError:
        # The reader went away (| head): nothing more to say.
        sys.stderr.close()
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
