from renderer.masking import REDACTED, Masker, is_secret_option

KEY = b"k" * 32


def test_secret_option_patterns_and_exceptions():
    assert is_secret_option("database", "connection")
    assert is_secret_option("DEFAULT", "transport_url")
    assert is_secret_option("keystone_authtoken", "password")
    assert is_secret_option("keystone_authtoken", "memcache_secret_key")
    assert is_secret_option("DEFAULT", "admin_token")
    assert is_secret_option(None, "rabbit_pass")
    assert not is_secret_option("token", "provider")
    assert not is_secret_option("token", "expiration")
    assert not is_secret_option("cache", "memcache_servers")
    assert not is_secret_option("fernet_tokens", "key_repository")
    assert not is_secret_option("fernet_tokens", "max_active_keys")


def test_url_password_masked_host_kept():
    masker = Masker(KEY)
    line = masker.mask_line("connection=mysql+pymysql://keystone:pw1234@192.0.2.40/keystone\n",
                            "database")
    assert "pw1234" not in line
    assert line.startswith("connection=mysql+pymysql://keystone:<redacted>#")
    assert line.endswith("@192.0.2.40/keystone\n")


def test_multi_host_transport_url_is_masked_whole_credentials_span():
    masker = Masker(KEY)
    line = masker.mask_line("transport_url=rabbit://u:p1@h1:5672,u:p2@h2:5672/\n", "DEFAULT")
    assert "p1" not in line and "p2" not in line


def test_sensitive_values_masked_anywhere_and_hash_is_keyed():
    masker = Masker(KEY, ["hunter22"])
    assert masker.mask_line("motd = the password is hunter22 ok") == \
        f"motd = the password is {masker.tag('hunter22')} ok"
    assert Masker(b"other" * 8).tag("hunter22") != masker.tag("hunter22")
    assert masker.tag("hunter22").startswith(REDACTED + "#")


def test_short_sensitive_value_masked_as_whole_value_only():
    masker = Masker(KEY, ["ab"])
    assert masker.mask_line("x = ab\n") == f"x = {masker.tag('ab')}\n"
    assert masker.mask_line("label = about\n") == "label = about\n"


def test_python_dict_style_line():
    masker = Masker(KEY)
    line = masker.mask_line("        'PASSWORD': 'hunter2',\n")
    assert "hunter2" not in line and line.endswith("',\n")


def test_sections_tracked_in_text():
    masker = Masker(KEY)
    text = "[token]\nprovider = fernet\n[DEFAULT]\ntoken = abc\n"
    masked = "".join(masker.mask_lines(text.splitlines(keepends=True)))
    assert "provider = fernet" in masked and "abc" not in masked
    assert masker.holds_secret(text)
    assert not masker.holds_secret("[token]\nprovider = fernet\n")
