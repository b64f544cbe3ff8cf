"""renderer.yamlimport: the pattern seeded for PyYAML's Reader matches exactly its own."""

import re
import subprocess
import sys

from renderer.masking import NOT_SECRET, is_secret_option
from renderer.yamlimport import EXCLUDED, READER_PATTERN


def test_seeded_pattern_matches_every_code_point_as_pyyamls():
    every = "".join(map(chr, range(0x110000)))
    assert re.findall(EXCLUDED, every) == re.findall(READER_PATTERN, every)


def test_pattern_is_pyyamls_own_text_and_reaches_its_reader():
    code = ("import renderer.yamlimport, yaml.reader, re;"
            "from renderer.yamlimport import EXCLUDED;"
            "print(yaml.reader.Reader.NON_PRINTABLE.pattern == EXCLUDED)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "True"  # PyYAML's text unchanged: the seed is used


def test_not_secret_matchers_agree_with_fnmatch():
    import fnmatch

    from renderer.masking import _SECRET_RE

    names = ["token.provider", "x.token_cache_time", "db.max_pool", "a.enabled_x", "a.auth_url",
             "a.b.auth_url", "a.my_auth_url", "token.caching", "s.password", "a.max_",
             "cache.memcache_secret_key", "a.maxx_token", "x.auth_urls", "token.providers",
             "default.max_token_size", "x.y.max_token_size", "x.use_auth", "x.use_auth_key"]
    names += [p.replace("*", "a.b") for p in NOT_SECRET]
    for name in names:
        section, option = name.split(".", 1)
        expected = bool(_SECRET_RE.search(name)) and not any(
            fnmatch.fnmatchcase(name, p) for p in NOT_SECRET)
        assert is_secret_option(section, option) == expected, name
