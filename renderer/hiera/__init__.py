"""Hiera 5 lookups that resolve exactly as Puppet 7's ``puppet lookup`` does.

``Hiera.load(path)`` reads a version 5 hiera.yaml; ``lookup(key, scope)`` returns the value for
one node's scope (facts, trusted, top-scope variables). Modules, by concern:

- ``config``: hiera.yaml validation and hierarchy levels
- ``hierarchy``: the files of each level for a scope (paths, globs, mapped_paths)
- ``psych``/``data``: data files, typed as Ruby's Psych types them
- ``interpolate``/``keys``: ``%{...}`` and dotted keys
- ``merge``: first, unique, hash, deep (the ``deep_merge`` gem, ported)
- ``convert``/``sensitive``: ``lookup_options`` ``convert_to``
- ``ruby``: the Ruby semantics that show in results (to_s, eql?, sorting, regexps)
- ``lookup``: the lookup itself, lookup_options and caching
"""

from renderer.hiera.lookup import NOT_GIVEN, Explain, Hiera
from renderer.hiera.sensitive import Sensitive

__all__ = ["Explain", "Hiera", "NOT_GIVEN", "Sensitive"]
