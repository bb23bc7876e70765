#!/usr/bin/python3
"""lint-bats.py FILE.bats... — reject bats assertions that can never fail.

A bats test runs under `set -e`, and bash ignores a failure in every
command of an and-or list but the last, and in a pipeline negated with `!`.
So, in the middle of a test,

    [ "$status" -eq 0 ] && [[ $output == *clean* ]]    # status never checked
    ! grep -q allow_other "$log"                       # never fails

pass whatever happens. Each is rejected here:

  mid-test && list    an and-or list whose last operator is `&&`, anywhere
                      in a test but as its very last command (the test's
                      status is then that list's status). Also inside an
                      if/while/for/case body or a { } group, whose status
                      bash does not check either. Allowed: `A && B || false`
                      (the `||` part fails the test), and a list ending in
                      break, continue, return, exit or skip (a condition
                      guarding control flow, not an assertion).
  mid-test negation   a pipeline negated with `!` that is the last part of
                      its list, anywhere but as the test's last command.
                      Allowed: `! cmd || false`, `run ! cmd`, `[ ! -e F ]`.

Checked: every @test body, setup/setup_file, and every function that a
checked body calls as a plain command (an assertion helper, also from a
file pulled in with `load`), transitively. A function called only in a
condition, a command substitution, after `run`, or from teardown is not an
assertion and is not checked. Conditions of if/while/until, quoted strings
(`run bash -c '...'`, `in_both '...'`), $(...), [[ ]] and (( )) are never
looked into. The last command of a function body or a ( ) subshell counts
as its status, like the test's last command.

Output: per finding, `FILE:LINE: the statement` and a line saying where
(the test, or the helper and who calls it) and why; exit 1 when there was
any, 2 when a file cannot be parsed (which is reported, not skipped). --marked: instead, compare the findings with the lines of the
files that carry a `# BAD` comment (the self-test's samples): exit 0 when
they are exactly those lines.
"""
import os
import re
import sys

CONTROL = {"break", "continue", "return", "exit", "skip"}
ROOTS = {"setup", "setup_file"}
TERMINATORS = {"then", "elif", "else", "fi", "do", "done", "esac", "}", "in"}


class ParseError(Exception):
    pass


# ---- tokens ------------------------------------------------------------

class Tok:
    __slots__ = ("kind", "val", "line")

    def __init__(self, kind, val, line):
        self.kind, self.val, self.line = kind, val, line  # kind: W, OP, NL, EOF

    def __repr__(self):
        return "%s(%r)@%d" % (self.kind, self.val, self.line)


OPS = ["&>>", ";;&", "<<<", "<<-", "&&", "||", "|&", ";;", ";&", "&>", "<<",
       "<&", ">&", ">>", ">|", "<>", "|", "&", ";", "(", ")", "<", ">"]
META = set(" \t\n;&|()<>")


class Lexer:
    def __init__(self, text):
        self.s = text
        self.i = 0
        self.line = 1
        self.heredocs = []  # (delimiter, strip_tabs) waiting for the next newline
        self.toks = []

    def err(self, msg):
        raise ParseError("line %d: %s" % (self.line, msg))

    def peek(self, k=0):
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def adv(self, n=1):
        for _ in range(n):
            if self.i < len(self.s) and self.s[self.i] == "\n":
                self.line += 1
            self.i += 1

    # skip a balanced construct starting at self.i (just after its opener)
    def skip_single(self):
        while True:
            c = self.peek()
            if c == "":
                self.err("unterminated '")
            self.adv()
            if c == "'":
                return

    def skip_ansi(self):  # $'...' with backslash escapes
        while True:
            c = self.peek()
            if c == "":
                self.err("unterminated $'")
            if c == "\\":
                self.adv(2)
                continue
            self.adv()
            if c == "'":
                return

    def skip_double(self):
        while True:
            c = self.peek()
            if c == "":
                self.err('unterminated "')
            if c == "\\":
                self.adv(2)
            elif c == '"':
                self.adv()
                return
            elif c == "$":
                self.adv()
                self.skip_dollar()
            elif c == "`":
                self.adv()
                self.skip_backtick()
            else:
                self.adv()

    def skip_backtick(self):
        while True:
            c = self.peek()
            if c == "":
                self.err("unterminated `")
            if c == "\\":
                self.adv(2)
                continue
            self.adv()
            if c == "`":
                return

    def skip_dollar(self):
        """After a '$': skip (...), ((...)), {...}, '...' or nothing."""
        c = self.peek()
        if c == "(":
            self.adv()
            self.skip_parens()
        elif c == "{":
            self.adv()
            self.skip_braces()
        elif c == "'":
            self.adv()
            self.skip_ansi()
        elif c == '"':
            self.adv()
            self.skip_double()

    def skip_parens(self):
        """Inside (...) of $(...) or <(...): up to the matching ')'."""
        depth = 1
        while True:
            c = self.peek()
            if c == "":
                self.err("unterminated $( or <(")
            if c == "\\":
                self.adv(2)
            elif c == "'":
                self.adv()
                self.skip_single()
            elif c == '"':
                self.adv()
                self.skip_double()
            elif c == "`":
                self.adv()
                self.skip_backtick()
            elif c == "$":
                self.adv()
                self.skip_dollar()
            elif c == "#" and (self.i == 0 or self.s[self.i - 1] in " \t\n;(|&"):
                while self.peek() not in ("", "\n"):
                    self.adv()
            elif c == "(":
                depth += 1
                self.adv()
            elif c == ")":
                depth -= 1
                self.adv()
                if depth == 0:
                    return
            else:
                self.adv()

    def skip_braces(self):
        depth = 1
        while True:
            c = self.peek()
            if c == "":
                self.err("unterminated ${")
            if c == "\\":
                self.adv(2)
            elif c == "'":
                self.adv()
                self.skip_single()
            elif c == '"':
                self.adv()
                self.skip_double()
            elif c == "$":
                self.adv()
                self.skip_dollar()
            elif c == "{":
                depth += 1
                self.adv()
            elif c == "}":
                depth -= 1
                self.adv()
                if depth == 0:
                    return
            else:
                self.adv()

    def read_word(self):
        """One word from self.i; returns its text (quotes kept)."""
        start = self.i
        while True:
            c = self.peek()
            if c == "" or c in " \t\n;&|":
                break
            if c in "<>":
                if self.peek(1) == "(" and self.i == start:  # <(...) >(...)
                    self.adv(2)
                    self.skip_parens()
                    continue
                break
            if c == ")":
                break
            if c == "(":
                w = self.s[start:self.i]
                if w.endswith("=") or w.endswith("+=") or w in ("@", "?", "*", "+", "!"):
                    # a=(...) or an extglob @(...)
                    self.adv()
                    self.skip_parens()
                    continue
                if w and w[-1] in "@?*+!":
                    self.adv()
                    self.skip_parens()
                    continue
                break
            if c == "\\":
                self.adv(2)
            elif c == "'":
                self.adv()
                self.skip_single()
            elif c == '"':
                self.adv()
                self.skip_double()
            elif c == "`":
                self.adv()
                self.skip_backtick()
            elif c == "$":
                self.adv()
                self.skip_dollar()
            else:
                self.adv()
        return self.s[start:self.i]

    def read_dbl_bracket(self, line):
        """After '[[': everything up to the word ']]' is one test word."""
        start = self.i - 2
        while True:
            while self.peek() in (" ", "\t"):
                self.adv()
            c = self.peek()
            if c == "":
                self.err("unterminated [[")
            if c == "\\" and self.peek(1) == "\n":
                self.adv(2)
                continue
            if c == "\n":
                self.adv()
                continue
            if self.s.startswith("]]", self.i) and (self.peek(2) == "" or self.peek(2) in META):
                self.adv(2)
                return Tok("W", self.s[start:self.i], line)
            if c in "&|<>()!;":
                self.adv()
                continue
            if not self.read_word():
                self.adv()

    def read_arith(self, line):
        """After '((': up to the matching '))'."""
        start = self.i - 2
        depth = 2
        while depth:
            c = self.peek()
            if c == "":
                self.err("unterminated ((")
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
            elif c == "$":
                self.adv()
                self.skip_dollar()
                continue
            elif c == '"':
                self.adv()
                self.skip_double()
                continue
            self.adv()
        return Tok("W", self.s[start:self.i], line)

    def read_heredocs(self):
        for delim, strip in self.heredocs:
            while True:
                if self.i >= len(self.s):
                    self.err("unterminated here-document %s" % delim)
                end = self.s.find("\n", self.i)
                if end < 0:
                    end = len(self.s)
                text = self.s[self.i:end]
                self.i = end + 1
                self.line += 1
                if (text.lstrip("\t") if strip else text) == delim:
                    break
        self.heredocs = []

    def run(self):
        toks = self.toks
        cmd_start = True  # the next word is in command position
        while True:
            c = self.peek()
            if c == "":
                toks.append(Tok("EOF", None, self.line))
                return toks
            if c in " \t":
                self.adv()
                continue
            if c == "\\" and self.peek(1) == "\n":
                self.adv(2)
                continue
            if c == "#":
                while self.peek() not in ("", "\n"):
                    self.adv()
                continue
            if c == "\n":
                toks.append(Tok("NL", None, self.line))
                self.adv()
                if self.heredocs:
                    self.read_heredocs()
                cmd_start = True
                continue
            line = self.line
            if self.s.startswith("((", self.i) and cmd_start:
                self.adv(2)
                toks.append(self.read_arith(line))
                cmd_start = False
                continue
            if c in "<>" and self.peek(1) == "(":
                toks.append(Tok("W", self.read_word(), line))
                cmd_start = False
                continue
            op = next((o for o in OPS if self.s.startswith(o, self.i)), None)
            if op:
                self.adv(len(op))
                if op in ("<<", "<<-"):
                    while self.peek() in (" ", "\t"):
                        self.adv()
                    w = self.read_word()
                    if not w:
                        self.err("here-document without a delimiter")
                    self.heredocs.append((re.sub(r"[\"'\\]", "", w), op == "<<-"))
                    toks.append(Tok("OP", "<<", line))
                    toks.append(Tok("W", w, line))
                    continue
                toks.append(Tok("OP", op, line))
                cmd_start = op in (";", "&", "&&", "||", "|", "|&", "(", ")", ";;", ";&", ";;&")
                continue
            w = self.read_word()
            if not w:
                self.err("unexpected character %r" % c)
            if w == "[[" and cmd_start:
                toks.append(self.read_dbl_bracket(line))
                cmd_start = False
                continue
            toks.append(Tok("W", w, line))
            cmd_start = w in ("!", "then", "do", "else", "elif", "if", "while", "until", "{", "time", "for")


# ---- syntax tree ---------------------------------------------------------

class Stmt:
    """An and-or list: pipelines joined by ops ('&&' / '||')."""

    def __init__(self, line):
        self.line = line
        self.pipes = []  # [(bang, [cmd...])]
        self.ops = []
        self.end_line = line


class Cmd:
    def __init__(self, kind, line, **kw):
        self.kind, self.line = kind, line  # simple if loop for case brace subshell arith test func
        self.__dict__.update(kw)


REDIR_OPS = {"<", ">", ">>", ">|", "<>", "<&", ">&", "&>", "&>>", "<<<", "<<"}


class Parser:
    def __init__(self, toks):
        self.t = toks
        self.i = 0

    def peek(self):
        return self.t[self.i]

    def next(self):
        tok = self.t[self.i]
        self.i += 1
        return tok

    def err(self, msg):
        tok = self.peek()
        raise ParseError("line %d: %s (at %s)" % (tok.line, msg, tok.val if tok.val else tok.kind))

    def is_word(self, *vals):
        tok = self.peek()
        return tok.kind == "W" and tok.val in vals

    def is_op(self, *vals):
        tok = self.peek()
        return tok.kind == "OP" and tok.val in vals

    def skip_nl(self):
        while self.peek().kind == "NL":
            self.i += 1

    def expect_word(self, val):
        self.skip_nl()
        if not self.is_word(val):
            self.err("expected %s" % val)
        self.i += 1

    def at_list_end(self, stop_words, stop_ops):
        tok = self.peek()
        if tok.kind == "EOF":
            return True
        if tok.kind == "W" and tok.val in stop_words:
            return True
        if tok.kind == "OP" and tok.val in stop_ops:
            return True
        return False

    def parse_list(self, stop_words=(), stop_ops=()):
        stmts = []
        while True:
            while self.peek().kind == "NL" or self.is_op(";", "&"):
                self.i += 1
            if self.at_list_end(stop_words, stop_ops):
                return stmts
            stmts.append(self.parse_andor())

    def parse_andor(self):
        st = Stmt(self.peek().line)
        st.pipes.append(self.parse_pipeline())
        while self.is_op("&&", "||"):
            st.ops.append(self.next().val)
            self.skip_nl()
            st.pipes.append(self.parse_pipeline())
        st.end_line = self.t[self.i - 1].line
        return st

    def parse_pipeline(self):
        bang = False
        if self.is_word("time"):
            self.i += 1
        while self.is_word("!"):
            bang = not bang
            self.i += 1
        cmds = [self.parse_command()]
        while self.is_op("|", "|&"):
            self.i += 1
            self.skip_nl()
            cmds.append(self.parse_command())
        return (bang, cmds)

    def redirects(self):
        while self.peek().kind == "OP" and self.peek().val in REDIR_OPS:
            self.i += 1
            if self.peek().kind != "W":
                self.err("redirection without a target")
            self.i += 1

    def parse_command(self):
        tok = self.peek()
        line = tok.line
        if tok.kind == "OP" and tok.val == "(":
            self.i += 1
            body = self.parse_list(stop_ops=(")",))
            if not self.is_op(")"):
                self.err("expected )")
            self.i += 1
            self.redirects()
            return Cmd("subshell", line, body=body)
        if tok.kind != "W":
            if tok.kind == "OP" and tok.val in REDIR_OPS:
                return self.parse_simple()
            self.err("expected a command")
        v = tok.val
        if v == "{":
            self.i += 1
            body = self.parse_list(stop_words=("}",))
            self.expect_word("}")
            self.redirects()
            return Cmd("brace", line, body=body)
        if v == "if":
            self.i += 1
            conds, bodies = [], []
            conds.append(self.parse_list(stop_words=("then",)))
            self.expect_word("then")
            bodies.append(self.parse_list(stop_words=("elif", "else", "fi")))
            while self.is_word("elif"):
                self.i += 1
                conds.append(self.parse_list(stop_words=("then",)))
                self.expect_word("then")
                bodies.append(self.parse_list(stop_words=("elif", "else", "fi")))
            if self.is_word("else"):
                self.i += 1
                bodies.append(self.parse_list(stop_words=("fi",)))
            self.expect_word("fi")
            self.redirects()
            return Cmd("if", line, conds=conds, bodies=bodies)
        if v in ("while", "until"):
            self.i += 1
            cond = self.parse_list(stop_words=("do",))
            self.expect_word("do")
            body = self.parse_list(stop_words=("done",))
            self.expect_word("done")
            self.redirects()
            return Cmd("loop", line, conds=[cond], body=body)
        if v in ("for", "select"):
            self.i += 1
            if self.peek().kind != "W":
                self.err("expected a name after for")
            self.i += 1
            self.skip_nl()
            if self.is_word("in"):
                self.i += 1
                while self.peek().kind == "W":
                    self.i += 1
            while self.peek().kind == "NL" or self.is_op(";"):
                self.i += 1
            self.expect_word("do")
            body = self.parse_list(stop_words=("done",))
            self.expect_word("done")
            self.redirects()
            return Cmd("loop", line, conds=[], body=body)
        if v == "case":
            self.i += 1
            self.i += 1  # the word
            self.expect_word("in")
            arms = []
            while True:
                self.skip_nl()
                if self.is_word("esac"):
                    self.i += 1
                    break
                if self.is_op("("):
                    self.i += 1
                while True:  # patterns
                    if self.peek().kind != "W":
                        self.err("expected a case pattern")
                    self.i += 1
                    if self.is_op("|"):
                        self.i += 1
                        continue
                    break
                if not self.is_op(")"):
                    self.err("expected ) after a case pattern")
                self.i += 1
                arms.append(self.parse_list(stop_words=("esac",), stop_ops=(";;", ";&", ";;&")))
                if self.is_op(";;", ";&", ";;&"):
                    self.i += 1
            self.redirects()
            return Cmd("case", line, bodies=arms)
        if v == "function":
            self.i += 1
            name = self.next().val
            if self.is_op("("):
                self.i += 2
            self.skip_nl()
            return Cmd("func", line, name=name, body=self.parse_command())
        if v.startswith("(("):
            self.i += 1
            self.redirects()
            return Cmd("arith", line)
        if v.startswith("[["):
            self.i += 1
            self.redirects()
            return Cmd("test", line)
        if v in TERMINATORS:
            self.err("unexpected %s" % v)
        # NAME () compound
        nxt = self.t[self.i + 1]
        if nxt.kind == "OP" and nxt.val == "(" and self.t[self.i + 2].kind == "OP" \
                and self.t[self.i + 2].val == ")":
            self.i += 3
            self.skip_nl()
            return Cmd("func", line, name=v, body=self.parse_command())
        return self.parse_simple()

    def parse_simple(self):
        line = self.peek().line
        words = []
        while True:
            tok = self.peek()
            if tok.kind == "W":
                words.append(tok.val)
                self.i += 1
            elif tok.kind == "OP" and tok.val in REDIR_OPS:
                self.i += 1
                if self.peek().kind != "W":
                    self.err("redirection without a target")
                self.i += 1
            else:
                break
        # skip assignments to find the command name
        name = next((w for w in words if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*(\[[^]]*\])?\+?=", w)), None)
        return Cmd("simple", line, words=words, name=name)


# ---- the files -----------------------------------------------------------

TEST_RE = re.compile(r"^([ \t]*)@test[ \t]+(.*[^ \t])[ \t]+\{[ \t]*$")


def parse_file(path):
    """Returns (tests: [(name, Cmd func)], funcs: {name: Cmd}, loads: [path])."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    tests = {}
    for n, ln in enumerate(lines):
        m = TEST_RE.match(ln)
        if m:
            fname = "__bats_test_%d" % (n + 1)
            tests[fname] = m.group(2)
            lines[n] = "%s%s() {" % (m.group(1), fname)
    toks = Lexer("\n".join(lines)).run()
    p = Parser(toks)
    top = p.parse_list()
    if p.peek().kind != "EOF":
        p.err("unexpected token")
    funcs, loads, tlist = {}, [], []

    def collect(stmts):
        for st in stmts:
            for _, cmds in st.pipes:
                for c in cmds:
                    if c.kind == "func":
                        if c.name in tests:
                            tlist.append((tests[c.name], c))
                        else:
                            funcs[c.name] = c
                    elif c.kind == "simple" and c.name == "load" and len(c.words) > 1:
                        arg = c.words[c.words.index("load") + 1].strip("'\"")
                        base = os.path.join(os.path.dirname(path), arg)
                        loads.append(base if base.endswith(".bash") else base + ".bash")
                    elif c.kind in ("if",):
                        for b in c.bodies:
                            collect(b)
    collect(top)
    return tlist, funcs, loads


def stmt_text(path, st):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    return " ".join(lines[st.line - 1:st.end_line]).strip()[:120]


class Linter:
    def __init__(self):
        self.findings = []  # (path, line, what, text)
        self.files = set()  # every file read (the bats files and what they load)

    def body_of(self, func):
        b = func.body
        return b.body if b.kind in ("brace", "subshell") else []

    def check_list(self, path, stmts, terminal, calls, ctx):
        """Check the statements of one list; terminal: its last statement
        gives the status of a test, function or subshell. calls: gets the
        names of the commands run where set -e checks them. ctx: what is
        checked (a test, a helper), for the message."""
        for k, st in enumerate(stmts):
            last = terminal and k == len(stmts) - 1
            final_op = st.ops[-1] if st.ops else None
            bang, cmds = st.pipes[-1]
            tail = cmds[-1]
            control = tail.kind == "simple" and tail.name in CONTROL
            if final_op == "&&" and not last and not control:
                self.findings.append((path, st.line, ctx, "an && list before the end: set -e ignores a "
                                      "failure of all but its last command (one check per line, or "
                                      "`A && B || false`)", st))
            elif bang and final_op != "||" and not last:
                self.findings.append((path, st.line, ctx, "a negation before the end: set -e ignores "
                                      "`! cmd` (write `! cmd || false`, or `run ! cmd`)", st))
            # commands whose status set -e checks: the final pipeline's last
            # command (unless negated); the others are conditions.
            for pi, (pb, pcmds) in enumerate(st.pipes):
                checked = pi == len(st.pipes) - 1 and not pb
                for ci, c in enumerate(pcmds):
                    self.descend(path, c, checked and ci == len(pcmds) - 1, calls, ctx)

    def descend(self, path, c, checked, calls, ctx):
        """c's status is checked by set -e when `checked`; otherwise it is
        a condition (as in `{ ...; } || true`), where bash ignores every
        failure inside it: nothing there asserts, nothing is looked at."""
        if not checked:
            return
        if c.kind == "simple":
            if c.name:
                calls.add(c.name)
        elif c.kind == "if":
            for b in c.bodies:
                self.check_list(path, b, False, calls, ctx)
        elif c.kind == "loop":
            self.check_list(path, c.body, False, calls, ctx)
        elif c.kind == "case":
            for b in c.bodies:
                self.check_list(path, b, False, calls, ctx)
        elif c.kind == "brace":
            self.check_list(path, c.body, False, calls, ctx)
        elif c.kind == "subshell":
            self.check_list(path, c.body, True, calls, ctx)

    def lint(self, path):
        tests, funcs, loads = parse_file(path)
        where = {name: path for name in funcs}
        seen = {path}
        self.files.add(path)
        while loads:
            lp = loads.pop(0)
            if lp in seen or not os.path.exists(lp):
                continue
            seen.add(lp)
            self.files.add(lp)
            _, lf, more = parse_file(lp)
            for name, fc in lf.items():
                if name not in funcs:
                    funcs[name] = fc
                    where[name] = lp
            loads.extend(more)
        todo = []
        for tname, fc in tests:
            calls = set()
            self.check_list(path, self.body_of(fc), True, calls, "in test %s" % tname)
            todo.extend((n, "called from test %s" % tname) for n in calls)
        todo.extend((n, "set-up") for n in ROOTS if n in funcs)
        done = set()
        while todo:
            name, why = todo.pop(0)
            if name in done or name not in funcs:
                continue
            done.add(name)
            calls = set()
            self.check_list(where[name], self.body_of(funcs[name]), True, calls,
                            "in %s()" % name if name in ROOTS else
                            "in %s(), an assertion helper (%s)" % (name, why))
            todo.extend((n, "called from %s()" % name) for n in calls)
        return len(tests)


def main(argv):
    marked = False
    if argv and argv[0] == "--marked":
        marked = True
        argv = argv[1:]
    if not argv:
        print("usage: lint-bats.py [--marked] FILE.bats...", file=sys.stderr)
        return 2
    lt = Linter()
    rc = 0
    for path in argv:
        try:
            n = lt.lint(path)
        except (ParseError, OSError, UnicodeDecodeError) as e:
            print("%s: cannot parse: %s" % (path, e))
            rc = 2
            continue
        if n == 0:
            print("%s: no @test found" % path)
            rc = 2
    found = {}
    for path, line, ctx, what, st in lt.findings:
        found.setdefault((path, line), (ctx, what, st))
    if marked:
        want = set()
        for path in lt.files | {p for p, _ in found}:
            with open(path, encoding="utf-8") as f:
                for n, ln in enumerate(f, 1):
                    if re.search(r"#\s*BAD\b", ln):
                        want.add((path, n))
        for key in sorted(set(found) - want):
            print("%s:%d: reported but not marked # BAD: %s" % (key[0], key[1], found[key][1]))
        for key in sorted(want - set(found)):
            print("%s:%d: marked # BAD but not reported" % key)
        return rc or (0 if set(found) == want else 1)
    for (path, line), (ctx, what, st) in sorted(found.items()):
        print("%s:%d: %s\n    %s, %s" % (path, line, stmt_text(path, st), ctx, what))
    return rc or (1 if found else 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
