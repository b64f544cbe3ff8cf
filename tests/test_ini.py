"""renderer.ini: oslo's lexer finds the options; merge edits only what the settings name."""

from __future__ import annotations

import pytest

from renderer.ini import IniSyntaxError, Setting, merge, parse

TEMPLATE = """\
# header comment
[DEFAULT]
debug=False
# a comment about transport_url
transport_url=rabbit://u:p#w@h:5672/

[oslo_messaging_notifications]
driver=messagingv2
driver=log

[cache]
backend_argument: a:b
memcache_servers=a:1,
  b:2
# introduces the next section
[empty]
"""


def merged(*settings: Setting, text: str = TEMPLATE) -> str:
    return merge(parse(text), settings)


def test_parse_with_oslo_lexer():
    layout = parse(TEMPLATE)
    assert layout.sections == {"DEFAULT", "oslo_messaging_notifications", "cache", "empty"}
    found = [(o.section, o.key, o.first + 1, o.last + 1) for o in layout.options]
    assert found == [("DEFAULT", "debug", 3, 3), ("DEFAULT", "transport_url", 5, 5),
                     ("oslo_messaging_notifications", "driver", 8, 8),
                     ("oslo_messaging_notifications", "driver", 9, 9),
                     ("cache", "backend_argument", 12, 12),
                     ("cache", "memcache_servers", 13, 14)]


def test_no_settings_keeps_every_byte():
    assert merged() == TEMPLATE


def test_replace_in_place_keeps_comments_and_order():
    out = merged(Setting("DEFAULT", "debug", ("True",)))
    assert out == TEMPLATE.replace("debug=False", "debug=True")


def test_multi_valued_replaces_every_line_at_the_first():
    out = merged(Setting("oslo_messaging_notifications", "driver", ("noop", "routing")))
    assert "driver=noop\ndriver=routing\n\n[cache]" in out
    assert "messagingv2" not in out and "driver=log" not in out


def test_continuation_lines_go_with_their_option():
    out = merged(Setting("cache", "memcache_servers", ("c:3",)))
    assert "memcache_servers=c:3\n# introduces the next section\n" in out
    assert "b:2" not in out


def test_new_option_after_the_last_option_of_its_section():
    out = merged(Setting("DEFAULT", "max_token_size", ("255",)),
                 Setting("cache", "enabled", ("True",)))
    assert "transport_url=rabbit://u:p#w@h:5672/\nmax_token_size=255\n\n" in out
    assert "  b:2\nenabled=True\n# introduces the next section\n" in out


def test_new_option_in_an_empty_section_goes_after_its_header():
    assert merged(Setting("empty", "a", ("1",))).endswith("[empty]\na=1\n")


def test_new_section_appended_at_the_end():
    out = merged(Setting("oslo_policy", "enforce_scope", ("True",)),
                 Setting("oslo_policy", "enforce_new_defaults", ("True",)))
    assert out == TEMPLATE + "\n[oslo_policy]\nenforce_scope=True\nenforce_new_defaults=True\n"


def test_remove():
    out = merged(Setting("DEFAULT", "debug", ()), Setting("oslo_messaging_notifications",
                                                         "driver", ()),
                 Setting("DEFAULT", "not_there", ()))
    assert "debug" not in out and "driver" not in out
    assert out.count("\n") == TEMPLATE.count("\n") - 3


def test_text_without_final_newline():
    assert merged(Setting("s", "b", ("2",)), text="[s]\na=1") == "[s]\na=1\nb=2\n"
    assert merged(Setting("t", "b", ("2",)), text="[s]\na=1") == "[s]\na=1\n\n[t]\nb=2\n"


def test_hash_inside_a_value_is_kept():
    """configobj would cut ``p#w`` short; oslo's lexer (and so the merge) does not."""
    out = merged(Setting("DEFAULT", "debug", ("True",)))
    assert "transport_url=rabbit://u:p#w@h:5672/" in out


@pytest.mark.parametrize("text, line, message", [
    ("a=1\n", 1, "outside of any"),
    ("[s]\n  x\n", 2, "Unexpected continuation"),
    ("[s\n", 1, "must end with ]"),
    ("[s]\nnovalue\n", 2, "No ':' or '='"),
])
def test_syntax_errors_name_the_line(text: str, line: int, message: str):
    with pytest.raises(IniSyntaxError) as info:
        parse(text)
    assert info.value.line == line
    assert message in info.value.message
