"""The expression language: text → AST → checked → compiled.

This package knows nothing about policies or exchanges; the policy layer supplies the names
(`Scope`) that expressions may use.
"""

from engine.dsl.ast import Expr
from engine.dsl.check import Checked, Scope, check_expression, definition_references
from engine.dsl.compile import CompiledExpression, Program, compile_expression, compile_program
from engine.dsl.parser import MAX_DEPTH, MAX_LENGTH, parse_expression
from engine.dsl.printer import print_expression
from engine.dsl.reference import Definitions, evaluate_reference
from engine.dsl.runtime import EvaluationContext, Frame, frame
from engine.dsl.table import Table

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Checked",
    "CompiledExpression",
    "Definitions",
    "EvaluationContext",
    "Expr",
    "Frame",
    "Program",
    "Scope",
    "Table",
    "check_expression",
    "compile_expression",
    "compile_program",
    "definition_references",
    "evaluate_reference",
    "frame",
    "parse_expression",
    "print_expression",
]
