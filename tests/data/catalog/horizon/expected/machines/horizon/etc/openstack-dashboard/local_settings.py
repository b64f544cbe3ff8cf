# Managed by render from hieradata. Local edits are reported and then replaced.
# Read by Django as Python: every value is written as a Python literal (tojson's strings are).

DEBUG = False
ALLOWED_HOSTS = ["*"]
SECRET_KEY = "H0rizon-django-S3cret-key"

OPENSTACK_HOST = "192.0.2.10"
OPENSTACK_KEYSTONE_URL = "http://192.0.2.10:5000/v3"
OPENSTACK_KEYSTONE_DEFAULT_ROLE = "member"
OPENSTACK_KEYSTONE_MULTIDOMAIN_SUPPORT = False
OPENSTACK_KEYSTONE_DEFAULT_DOMAIN = "Default"

# Sessions live in the shared memcached servers (pymemcache: IPv6 as [address]:port).
SESSION_ENGINE = "django.contrib.sessions.backends.cache"
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": ["192.0.2.21:11211", "192.0.2.22:11211", "[fd00::21]:11211"],
    },
}

TIME_ZONE = "UTC"
