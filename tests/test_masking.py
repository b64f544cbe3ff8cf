import pytest

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


def test_auth_options_and_false_positives():
    assert is_secret_option("mysqld", "wsrep_sst_auth")
    assert is_secret_option("DEFAULT", "sasl_auth")
    for option in ("auth_url", "auth_type", "auth_strategy", "auth_version", "auth_section"):
        assert not is_secret_option("keystone_authtoken", option), option
    assert not is_secret_option("DEFAULT", "max_allowed_secret_in_bytes")
    assert not is_secret_option("secretstore", "enabled_secretstore_plugins")
    masker = Masker(KEY)
    text = "max_allowed_secret_in_bytes=20000\nenabled_secretstore_plugins=store_crypto\n"
    assert masker.mask_lines(text.splitlines(keepends=True)) == text.splitlines(keepends=True)


PEM = ("-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\n"
       "Vx0Zm9vYmFyYmF6cXV4\nZm9v==\n-----END PRIVATE KEY-----\n")


def test_multi_line_secret_masked_line_by_line():
    masker = Masker(KEY, [PEM])
    text = "[ssl]\nkey = " + PEM.replace("\n", "\n  ").rstrip() + "\n\nother = -----END\n"
    masked = "".join(masker.mask_lines(text.splitlines(keepends=True)))
    for line in PEM.splitlines()[1:-1]:
        assert line not in masked
    assert "  -----END PRIVATE KEY-----\n" in masked  # armour is no secret
    assert "other = -----END\n" in masked and "\n\n" in masked  # nor a blank line
    # a message quoting a line of the key is masked whole
    line = PEM.splitlines()[1]
    assert masker.mask_text(f"bad: '{line}'") == f"bad: '{masker.tag(line)}'"


def test_secret_names_are_names_never_values():
    masker = Masker(KEY, ["s3cr3t-pw", PEM])
    text = ("[a]\npassword = x\nblob = u:s3cr3t-pw\nplain = 1\nstats auth admin:s3cr3t-pw\n"
            "key = -----BEGIN PRIVATE KEY-----\n" + "".join(
                f"  {line}\n" for line in PEM.splitlines()[1:]))
    names = masker.secret_names(text)
    assert names == {"a.password", "a.blob", "a.stats auth", "a.key", "a.+"}
    assert masker.secret_names("[a]\nkek = plain\n", ["kek"]) == {"a.kek"}
    assert masker.secret_names("[a]\nkek = plain\n", ["b.kek"]) == frozenset()


def test_old_side_masked_by_name_with_unknown_values():
    masker = Masker(KEY)  # knows no value at all: the old side of a rotation
    old = ("[a]\nblob = u:oldpass\nkek = oldkek\nconnection = mysql://u:oldpw@db/x\n"
           "stats auth admin:oldpw\nkey = x\n  T0xES0VZTElORTE=\n  T0xE\nplain = 1\n")
    names = {"a.blob", "a.kek", "a.connection", "a.stats auth", "a.+"}
    masked = "".join(masker.mask_lines(old.splitlines(keepends=True), names=names))
    for value in ("oldpass", "oldkek", "oldpw", "T0xE"):
        assert value not in masked, value
    assert "@db/x\n" in masked and "stats auth <redacted>#" in masked and "plain = 1\n" in masked


def test_secret_true_masks_every_value():
    masker = Masker(KEY)
    text = "[db]\nhost = db1\n# a comment\n\nlone\n"
    masked = masker.mask_lines(text.splitlines(keepends=True), whole=True)
    assert masked[0] == "[db]\n" and masked[3] == "\n"
    assert "db1" not in "".join(masked) and "lone" not in "".join(masked)


def test_state_records_secret_names_and_reads_older_records():
    from renderer import state as st

    old = b'{"format": 2, "units": {}, "files": {"k": {"hash": "h", "at": "t", "versions": []}}}'
    parsed = st.parse(old, "x")
    assert parsed.files["k"].secret_options == ()
    assert b"secret_options" not in st.dumps(parsed)  # unchanged records stay byte-identical
    st.record_file(parsed, "k", "h2", "t2", {"a.password"})
    again = st.parse(st.dumps(parsed), "x")
    assert again.files["k"].secret_options == ("a.password",)
    st.record_file(again, "k", "h3", "t3")  # None: the names stay
    assert again.files["k"].secret_options == ("a.password",)
    from renderer.errors import ApplyError

    with pytest.raises(ApplyError):
        st.parse(old.replace(b'"versions": []', b'"versions": [], "secret_options": "x"'), "x")
