"""Safe arithmetic expressions over named parameters (e.g. a check's ``bound = "2 * noise / n"``).

The grammar is deliberately small and parsed with :mod:`ast`, never ``eval``: numbers, names,
``+ - * / **``, unary ``-``/``+``, parentheses and the functions ``sqrt, log, exp, min, max``.
Anything else (attributes, subscripts, comparisons, other calls, keywords, strings, ...) is
refused when the expression is parsed, with a message naming the offending token, so that a
bad expression fails before any compute.  Arithmetic is done in Python floats (an int power
such as ``10**10**10`` cannot hang), and a value that is not a finite real number (division
by zero, ``log(0)``, a negative number to a fractional power, overflow) raises ValueError.
"""

from __future__ import annotations

import ast
import dataclasses
import math
import operator

FUNCTIONS = {
    "sqrt": (math.sqrt, 1),
    "log": (math.log, 1),
    "exp": (math.exp, 1),
    "min": (min, None),  # None: two or more arguments
    "max": (max, None),
}
_BINARY = {ast.Add: ("+", operator.add), ast.Sub: ("-", operator.sub),
           ast.Mult: ("*", operator.mul), ast.Div: ("/", operator.truediv),
           ast.Pow: ("**", operator.pow)}
_UNARY = {ast.USub: operator.neg, ast.UAdd: operator.pos}
ALLOWED = "numbers, parameter names, + - * / **, unary -, ( ) and sqrt, log, exp, min, max"
MAX_LENGTH = 500


@dataclasses.dataclass(frozen=True)
class Expression:
    """A parsed expression: ``names`` it reads, and ``__call__(values)`` to evaluate it."""

    text: str
    names: tuple[str, ...]
    _tree: ast.Expression = dataclasses.field(repr=False, compare=False)

    def __call__(self, values: dict[str, float]) -> float:
        missing = [k for k in self.names if k not in values]
        if missing:
            raise ValueError(f"`{self.text}` needs {', '.join(missing)}")
        try:
            out = _eval(self._tree.body, values)
        except OverflowError:
            raise ValueError(f"`{self.text}` overflows here") from None
        except (ZeroDivisionError, ValueError) as e:
            raise ValueError(f"`{self.text}` is undefined here: {e}") from None
        if isinstance(out, complex) or not math.isfinite(out):
            raise ValueError(f"`{self.text}` is not a finite real number here ({out})")
        return float(out)


def _segment(text: str, node: ast.AST) -> str:
    return ast.get_source_segment(text, node) or type(node).__name__


def _refuse(text: str, node: ast.AST, what: str) -> ValueError:
    return ValueError(f"`{text}`: {what} is not allowed (allowed: {ALLOWED})")


def parse(text: str) -> Expression:
    """Parse and check ``text``; ValueError naming the offending token if it is refused."""
    if not isinstance(text, str):
        raise ValueError(f"an expression must be a string, got {text!r}")
    if len(text) > MAX_LENGTH:
        raise ValueError(f"an expression may have at most {MAX_LENGTH} characters, got "
                         f"{len(text)}")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as e:
        raise ValueError(f"`{text}` is not an arithmetic expression ({e.msg})") from None
    text = text.strip()
    names: dict[str, tuple[int, int]] = {}  # name -> where it first appears
    for node in ast.walk(tree.body):
        if isinstance(node, ast.Constant):
            v = node.value
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise _refuse(text, node, f"the constant {_segment(text, node)}")
            try:
                if not math.isfinite(float(v)):
                    raise OverflowError
            except OverflowError:
                raise ValueError(f"`{text}`: the number {_segment(text, node)} is too large")\
                    from None
        elif isinstance(node, ast.Name):
            if node.id in FUNCTIONS:
                continue  # checked with its Call below; a bare `sqrt` is refused there
            at = (node.lineno, node.col_offset)
            names[node.id] = min(names.get(node.id, at), at)
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY:
                raise _refuse(text, node, f"the operator {_op_token(text, node)!r}")
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                token = {ast.Not: "not", ast.Invert: "~"}.get(type(node.op), "?")
                raise _refuse(text, node, f"the operator {token!r}")
        elif isinstance(node, ast.Call):
            fn = node.func.id if isinstance(node.func, ast.Name) else None
            if fn not in FUNCTIONS:
                raise _refuse(text, node, f"the call {_segment(text, node.func)!r}"
                              + ("" if fn is None else f" (unknown function {fn!r})"))
            if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
                raise _refuse(text, node, f"{_segment(text, node)!r} (keyword or * arguments)")
            arity = FUNCTIONS[fn][1]
            if arity is not None and len(node.args) != arity:
                raise ValueError(f"`{text}`: {fn} takes {arity} argument, got {len(node.args)}")
            if arity is None and len(node.args) < 2:
                raise ValueError(f"`{text}`: {fn} takes two or more arguments, got "
                                 f"{len(node.args)}")
        elif isinstance(node, (ast.operator, ast.unaryop, ast.expr_context)):
            continue
        else:
            raise _refuse(text, node, f"{_segment(text, node)!r} ({_describe(node)})")
    for node in ast.walk(tree.body):  # a function name used as a value, e.g. `sqrt + 1`
        if isinstance(node, ast.Name) and node.id in FUNCTIONS and not _is_callee(tree, node):
            raise _refuse(text, node, f"the function name {node.id!r} without a call")
    return Expression(text, tuple(sorted(names, key=names.get)), tree)


def _is_callee(tree: ast.AST, name: ast.Name) -> bool:
    return any(isinstance(n, ast.Call) and n.func is name for n in ast.walk(tree))


def _op_token(text: str, node: ast.BinOp) -> str:
    """The operator between the operands as written, e.g. '%' or '//'."""
    seg = ast.get_source_segment(text, node)
    left, right = ast.get_source_segment(text, node.left), ast.get_source_segment(text, node.right)
    if seg and left and right and seg.startswith(left) and seg.endswith(right):
        middle = seg[len(left):len(seg) - len(right)].strip().strip("()").strip()
        if middle:
            return middle
    return type(node.op).__name__


def _describe(node: ast.AST) -> str:
    return {ast.Attribute: "attribute access", ast.Subscript: "indexing",
            ast.Compare: "a comparison", ast.BoolOp: "a boolean operator",
            ast.IfExp: "a conditional", ast.Lambda: "a lambda",
            ast.JoinedStr: "a string", ast.List: "a list", ast.Tuple: "a tuple",
            ast.Dict: "a dict", ast.Set: "a set", ast.NamedExpr: "an assignment"}.get(
        type(node), type(node).__name__)


def _eval(node: ast.AST, values: dict[str, float]):
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(values[node.id])
    if isinstance(node, ast.BinOp):
        return _BINARY[type(node.op)][1](_eval(node.left, values), _eval(node.right, values))
    if isinstance(node, ast.UnaryOp):
        return _UNARY[type(node.op)](_eval(node.operand, values))
    if isinstance(node, ast.Call):
        args = [_eval(a, values) for a in node.args]
        if any(isinstance(a, complex) for a in args):
            raise ValueError("a complex intermediate value")
        return FUNCTIONS[node.func.id][0](*args)
    raise AssertionError(f"unchecked node {type(node).__name__}")  # parse() refused it
